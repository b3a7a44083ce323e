-- progress_spec.lua: the progress display: plain lines per 10 % off a terminal, one
-- redrawn line on a terminal, ETA from the elapsed time.
local progress = require("neuronas.progress")

local function sink()
  local s = { text = "" }
  function s:write(...) for _, v in ipairs({ ... }) do self.text = self.text .. v end end
  function s:flush() end
  return s
end

describe("neuronas.progress", function()
  it("prints a plain line per 10 % when not on a terminal", function()
    local out, t = sink(), 0
    local p = progress.new({ total = 100, label = "run", stream = out, tty = false, every = 1e9,
      clock = function() return t end })
    for i = 1, 100 do
      t = i * 0.5
      p:update({ done = i, feasible = i // 2, best = -1.5 })
    end
    p:finish()
    local lines = {}
    for l in out.text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(11, #lines) -- 1 %, then 10 %, 20 %, ..., 100 %
    assert.are.equal("run 50/100 (50%) feasible 25 best -1.5000 elapsed 0:25 ETA 0:25", lines[6])
    assert.are.equal("run 100/100 (100%) feasible 50 best -1.5000 elapsed 0:50 ETA 0:00", lines[11])
  end)

  it("redraws one line with a bar on a terminal and ends it with a newline", function()
    local out, t = sink(), 0
    local p = progress.new({ total = 4, label = "s", stream = out, tty = true, clock = function() return t end })
    for i = 1, 4 do
      t = t + 1
      p:update({ done = i, feasible = 1, stage = "stage 2" })
    end
    p:finish()
    assert.are.equal(#out.text, out.text:find("\n", 1, true)) -- the only newline ends the text
    local last = out.text:match("\r([^\r]*)\n$")
    assert.truthy(last:find("^s stage 2 %[########################%] 4/4  feasible 1  best %-  0:04 elapsed  ETA 0:00"))
    assert.truthy(out.text:find("\rs stage 2 [######..................] 1/4", 1, true))
  end)

  it("stays silent when quiet", function()
    local out = sink()
    local p = progress.new({ total = 3, stream = out, quiet = true })
    p:update({ done = 1 })
    p:finish()
    assert.are.equal("", out.text)
  end)
end)
