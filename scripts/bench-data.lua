-- bench-data.lua: batches per second of 64-image batches through the Lua API, run by
-- scripts/bench-data as `neuronas run scripts/bench-data.lua [SECONDS]`. CPU seconds (os.clock).
local nn = require("neuronas")
local secs = tonumber(arg and arg[1]) or 2
local ds = nn.data.default({ quiet = true })
print(("Lua API on %s (%s, %d images)"):format(ds.name, ds.source, ds.size))

local function rate(name, step)
  collectgarbage()
  local n, t0 = 0, os.clock()
  while os.clock() - t0 < secs do
    step(n)
    n = n + 1
  end
  local t = os.clock() - t0
  print(("%-30s %9.0f batches/s  (%.0f images/s, batch 64)"):format(name, n / t, 64 * n / t))
end

local max_off = ds.size - 64
rate("ds:batch(64, {offset=})", function(i) ds:batch(64, { offset = (i * 64) % max_off }) end)
rate("ds:batch(64, {seed=})", function(i) ds:batch(64, { seed = i }) end)
local it, epoch = nil, 0
rate("ds:iter{augment=true}", function()
  local x = it and it()
  if not x then
    it = ds:iter({ batch = 64, seed = 1, epoch = epoch, augment = true })
    epoch = epoch + 1
    it()
  end
end)
