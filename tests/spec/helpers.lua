-- tests/spec/helpers.lua: shared spec helpers (paths, running the CLI, _G snapshots).
local M = {}

M.build = os.getenv("NEURONAS_BUILD") or "build"
M.cli = os.getenv("NEURONAS_CLI") or (M.build .. "/neuronas")

-- The bytes of a file.
function M.slurp(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Runs a shell command; returns exit code, stdout, stderr.
function M.run(cmd)
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute(cmd .. " >" .. out .. " 2>" .. err .. " </dev/null")
  local function take(p)
    local s = M.slurp(p)
    os.remove(p)
    return s
  end
  if how == "signal" then code = 128 + code end
  return ok and 0 or code, take(out), take(err)
end

-- Writes text to a fresh temporary file and returns its path.
function M.tmpfile(text, suffix)
  local p = os.tmpname() .. (suffix or "")
  local f = assert(io.open(p, "wb"))
  f:write(text)
  f:close()
  return p
end

-- A fresh temporary path (nothing there yet), ending in suffix.
function M.tmpname(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. (suffix or "")
end

-- Writes s to path p.
function M.spit(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- Shell-quotes s.
function M.q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Names of the globals present now (to check modules leave _G alone).
function M.globals()
  local g = {}
  for k in pairs(_G) do g[k] = true end
  return g
end

function M.new_globals(before)
  local added = {}
  for k in pairs(_G) do
    if not before[k] then added[#added + 1] = tostring(k) end
  end
  table.sort(added)
  return added
end

-- A batch of n fashion-mnist-shaped inputs (n x 1 x 28 x 28) drawn N(0, 1) from nn.rng(seed).
function M.fashion_batch(n, seed)
  local nn = require("neuronas")
  local x = nn.tensor(n, 1, 28, 28)
  x:normal(nn.rng(seed), 0, 1)
  return x
end

-- How many times a Lua pattern matches in s.
function M.count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

-- How many edges of a cell carry op.
function M.count_op(cell, op)
  local n = 0
  for _, e in ipairs(require("neuronas").cell(cell):edges()) do
    if e.op == op then n = n + 1 end
  end
  return n
end

-- Costs of a fake pipeline (the search specs): they grow with the convolutions of each cell.
function M.fake_cost(a, b)
  local count = M.count_op
  local ca, cb = count(a, "conv3x3"), count(b, "conv3x3")
  local pa, pb = count(a, "avgpool3x3"), count(b, "avgpool3x3")
  return {
    memory_params = 1000 + 100 * ca + 400 * cb,
    area_mm2 = 1 + 0.5 * ca + 0.25 * cb + 0.01 * (pa + pb),
    latency_ms = 2 + ca + 2 * cb - 0.1 * pb,
    energy_uj = 1 + 0.3 * ca + 0.2 * cb + 0.05 * pa,
  }
end

-- The bytes of a .npy file (format 1.0, header padded to 64 bytes): descr such as '|u1' or
-- '<i8', shape as Python writes it ('(2, 28, 28)'), data the raw little-endian elements.
function M.npy(descr, shape, data)
  local dict = ("{'descr': '%s', 'fortran_order': False, 'shape': %s, }"):format(descr, shape)
  local total = math.ceil((10 + #dict + 1) / 64) * 64
  local hl = total - 10
  return "\147NUMPY\1\0" .. string.pack("<I2", hl) .. dict .. (" "):rep(hl - #dict - 1) .. "\n" .. data
end

return M
