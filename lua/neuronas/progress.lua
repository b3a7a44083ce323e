-- neuronas/progress.lua: the progress display of long runs. On a terminal, one line
-- redrawn in place (bar, done/total, feasible so far, best score, ETA); elsewhere, a plain line
-- every `every` seconds or 10 % of the work, so logs stay short. Writes to stderr by default.
local M = {}

local Progress = {}
Progress.__index = Progress

local function fmt_time(s)
  if not s or s ~= s or s == math.huge then return "--:--" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  return string.format("%d:%02d", s // 60, s % 60)
end
M.fmt_time = fmt_time

-- progress.new{ total =, label =, stream = io.stderr, tty = (auto), quiet = false, every = 10,
--               clock = function() -> seconds }
function M.new(opts)
  opts = opts or {}
  local core = package.loaded["neuronas.core"]
  local tty = opts.tty
  if tty == nil then tty = core and core.isatty and core.isatty(2) or false end
  local clock = opts.clock or (core and core.clock) or os.clock
  return setmetatable({
    total = opts.total or 0, label = opts.label or "", stream = opts.stream or io.stderr,
    tty = tty, quiet = opts.quiet or false, every = opts.every or 10, clock = clock,
    t0 = clock(), last_print = -math.huge, last_frac = -1, done = 0, width = 0,
  }, Progress)
end

-- p:update{ done =, total =, feasible =, best =, stage = }
function Progress:update(st)
  if self.quiet then return end
  local now = self.clock()
  if st.total then self.total = st.total end
  self.done = st.done or self.done
  local total = math.max(self.total, 1)
  local frac = math.min(self.done / total, 1)
  local elapsed = now - self.t0
  local eta = self.done > 0 and elapsed / self.done * (total - self.done) or nil
  local best = st.best and string.format("%.4f", st.best) or "-"
  local stage = st.stage and string.format(" %s", st.stage) or ""
  if self.tty then
    if now - self.last_print < 0.1 and self.done < total then return end
    local bar_w = 24
    local filled = math.floor(frac * bar_w + 0.5)
    local line = string.format("%s%s [%s%s] %d/%d  feasible %d  best %s  %s elapsed  ETA %s",
      self.label, stage, string.rep("#", filled), string.rep(".", bar_w - filled), self.done, total,
      st.feasible or 0, best, fmt_time(elapsed), fmt_time(eta))
    local pad = math.max(self.width - #line, 0)
    self.width = #line
    self.stream:write("\r", line, string.rep(" ", pad))
    self.stream:flush()
  else
    -- a line per 10 % of the work, or per `every` seconds when that comes first
    local step = math.floor(frac * 10)
    if step <= self.last_frac and now - self.last_print < self.every then return end
    self.last_frac = step
    self.stream:write(string.format("%s%s %d/%d (%d%%) feasible %d best %s elapsed %s ETA %s\n",
      self.label, stage, self.done, total, math.floor(frac * 100), st.feasible or 0, best,
      fmt_time(elapsed), fmt_time(eta)))
    self.stream:flush()
  end
  self.last_print = now
end

-- Ends the display (newline after a redrawn line).
function Progress:finish()
  if self.quiet then return end
  if self.tty and self.width > 0 then
    self.stream:write("\n")
    self.stream:flush()
  end
end

return M
