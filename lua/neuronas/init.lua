-- neuronas/init.lua: require "neuronas", the Lua face of the engine.
-- The C half is neuronas.core; this file adds only defaults and sugar, and sets no globals.
local core = require("neuronas.core")

local M = {}

M.version = core.version
M.core = core

-- nn.tensor(d1, d2, ...) or nn.tensor{d1, d2} -> zeros; nn.tensor.from(nested table);
-- nn.tensor.load(path[, name]) / nn.tensor.save(path, { name = t }): safetensors files
M.tensor = setmetatable({ from = core.tensor_from, load = core.tensor_load, save = core.tensor_save }, {
  __call = function(_, ...) return core.tensor(...) end,
})

M.rng = core.rng

-- Every other constructor the C half registers (cell, space, net, data, quantizer, fitness,
-- ela, ...) is exposed under its own name unless a Lua module below wraps it.
for k, v in pairs(core) do
  if M[k] == nil and not k:find("^tensor_") then M[k] = v end
end

-- Lua halves of engine parts: each neuronas/<name>.lua listed here returns a
-- function(M, core) that adds its sugar to M (cells: genotypes and spaces; data: datasets;
-- quant: quantizer and fitness; hardware: the ELA model; train: training).
for _, name in ipairs({ "cells", "data", "quant", "hardware", "train" }) do
  require("neuronas." .. name)(M, core)
end

return M
