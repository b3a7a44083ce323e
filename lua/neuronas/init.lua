-- neuronas/init.lua: require "neuronas", the Lua face of the engine.
-- The C half is neuronas.core; each Lua half below is an ordinary module returning a table, and
-- this file picks the names the user sees from them. It sets no globals.
local core = require("neuronas.core")
local data = require("neuronas.data")
local quant = require("neuronas.quant")
local train = require("neuronas.train")
local variation = require("neuronas.variation")

local M = {}

M.version = core.version
M.core = core

-- nn.tensor(d1, d2, ...) or nn.tensor{d1, d2} -> zeros; nn.tensor.from(nested table);
-- nn.tensor.load(path[, name]) / nn.tensor.save(path, { name = t }): safetensors files
M.tensor = setmetatable({ from = core.tensor_from, load = core.tensor_load, save = core.tensor_save }, {
  __call = function(_, ...) return core.tensor(...) end,
})

-- Every other constructor the C half registers is exposed under the name it registers: cell
-- (a callable table with parse and ops), space, net, quantizer, ela (hw:evaluate, hw:report,
-- hw:active_energy, hw:evaluate_active are its C methods), activity, trainer, ...
for k, v in pairs(core) do
  if M[k] == nil and not k:find("^tensor_") then M[k] = v end
end

M.data = data                                -- nn.data.open / probe (C) and nn.data.default
M.quantize = quant.quantize                  -- nn.quantize(net_or_tensor, bits | opts)
M.train = train                              -- nn.train.epoch / nn.train.evaluate
M.fitness = variation.fitness                -- nn.fitness with the `variation` option
M.fitness_many = variation.fitness_many
M.variation = core.variation_net             -- nn.variation(net, opts, draw) -> noisy copy

return M
