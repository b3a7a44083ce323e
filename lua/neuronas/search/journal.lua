-- neuronas/search/journal.lua: the search journal, one flushed JSON line per evaluated candidate
-- after a header line naming the settings. `--resume` replays it into the evaluator's cache, and a
-- journal written with other settings is refused.
local json = require("neuronas.json")

local M = {}

local Journal = {}
Journal.__index = Journal

-- A digest of the settings a journal's results depend on (resuming with others is refused).
function M.settings_digest(s)
  local t = {
    preset = s.preset, seed = s.seed, bits = s.bits, rounding = s.rounding, batch = s.batch,
    ["repeat"] = s["repeat"], timesteps = s.timesteps or json.null, data_seed = s.data_seed,
    net = s.net or json.object(), label = s.label or json.null,
    variation = s.variation, activity = s.activity, -- absent unless set (docs/variation.md)
  }
  return json.encode(t)
end

-- Cost fields a journal keeps (the per-layer list is recomputed when needed).
local function slim_cost(cost)
  local c = {}
  for k, v in pairs(cost) do
    if k ~= "layers" and type(v) ~= "table" and type(v) ~= "function" and type(v) ~= "userdata" then c[k] = v end
  end
  return c
end

-- journal.open(path, resume, digest) -> journal, replayed
-- replayed maps each journaled key to { cost =, score =, scored =, seconds =, from_journal = true }
-- (empty for a new journal). A torn last line is ignored.
function M.open(path, resume, digest)
  local replayed = {}
  if resume then
    local f = io.open(path, "r")
    if f then
      local first = true
      for line in f:lines() do
        local ok, rec = pcall(json.decode, line)
        if first then
          if not ok or rec.journal ~= "neuronas" then
            f:close()
            error(string.format("%s: not a neuronas journal", path), 0)
          end
          if rec.settings ~= digest then
            f:close()
            error(string.format("%s: written with other settings (%s); use the same flags or another journal",
              path, rec.settings), 0)
          end
          first = false
        elseif ok and type(rec) == "table" and rec.key then
          replayed[rec.key] = { cost = rec.cost, score = rec.score ~= json.null and rec.score or nil,
            scored = rec.scored, seconds = rec.seconds, from_journal = true }
        end
      end
      f:close()
      return setmetatable({ file = assert(io.open(path, "a")), path = path }, Journal), replayed
    end
  end
  local f, err = io.open(path, "w")
  if not f then error("cannot write journal: " .. tostring(err), 0) end
  f:write(json.encode({ journal = "neuronas", version = require("neuronas").version, settings = digest }), "\n")
  f:flush()
  return setmetatable({ file = f, path = path }, Journal), replayed
end

-- Appends one evaluated candidate (non-finite scores as strings: JSON has no inf or nan).
function Journal:write(key, entry)
  local score = entry.score
  if score ~= nil and (score ~= score or score == math.huge or score == -math.huge) then
    score = tostring(score)
  end
  self.file:write(json.encode({ key = key, cost = slim_cost(entry.cost), score = score == nil and json.null or score,
    scored = entry.scored, seconds = entry.seconds }), "\n")
  self.file:flush()
end

function Journal:close()
  if self.file then
    self.file:close()
    self.file = nil
  end
end

-- A journaled score back to a number ("-inf", "inf", "nan" were written as strings).
function M.as_number(v)
  if type(v) == "string" then
    if v == "-inf" then return -math.huge end
    if v == "inf" then return math.huge end
    return tonumber(v)
  end
  return v
end

return M
