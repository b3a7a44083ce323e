-- neuronas/data.lua: the Lua half of datasets (docs/data.md): nn.data.open / probe come from
-- the C binding (l_data.c); this adds nn.data.default, the Fashion-MNIST the main job runs on.
-- Returns the nn.data table.
local core = require("neuronas.core")

local DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"   -- docs/data.md: Debian dataset-fashion-mnist
-- Per-channel statistics of the 60,000 Fashion-MNIST training images (population mean/std of
-- pixel/255, computed by nn.data.open over the Debian files). default() normalises every split
-- and the embedded subset with them, so train, test and subset inputs share one scale.
local FMNIST_MEAN, FMNIST_STD = 0.28604059698879553, 0.35302424451492259

-- Folder of this file (no dependence on the current directory).
local function here()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) ~= "@" then return nil end
  return (src:sub(2):match("^(.*)/[^/]*$")) or "."
end

local function readable(p)
  local f <close> = io.open(p, "rb")
  return f ~= nil
end

-- Candidate folders of the embedded subset: the source tree (lua/neuronas/../../datasets), the
-- install tree (share/lua/5.4/neuronas/../../../neuronas/datasets) and $NEURONAS_DATASETS.
local function embedded_dirs()
  local dirs = {}
  local env = os.getenv("NEURONAS_DATASETS")
  if env and env ~= "" then dirs[#dirs + 1] = env .. "/fashion-mnist" end
  local h = here()
  if h then
    local function up(p, n)
      for _ = 1, n do p = p:match("^(.*)/[^/]*$") or "." end
      return p
    end
    dirs[#dirs + 1] = up(h, 2) .. "/datasets/fashion-mnist"
    dirs[#dirs + 1] = up(h, 3) .. "/neuronas/datasets/fashion-mnist"
  end
  return dirs
end

local function has_split(dir, split)
  local stem = split == "test" and "t10k" or "train"
  for _, ext in ipairs({ ".gz", "" }) do
    if readable(dir .. "/" .. stem .. "-images-idx3-ubyte" .. ext)
      and readable(dir .. "/" .. stem .. "-labels-idx1-ubyte" .. ext) then
      return true
    end
  end
  return false
end

local VALID = { split = true, quiet = true, embedded = true, limit = true }

local data = { open = core.data.open, probe = core.data.probe }

-- nn.data.default{ split = "train"|"test", embedded = false, quiet = false, limit = n } -> Dataset
-- (limit: the first n records only).
-- The full Fashion-MNIST of the Debian package when installed, else the embedded subset
-- (2,000 train / 1,000 test); ds.source says which ("debian" or "embedded"), and a line on
-- stderr too unless quiet.
function data.default(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #1 to 'default' (table expected, got %s)"):format(type(opts)), 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not VALID[k] then
      error(("bad argument #1 to 'default' (unknown field '%s' (expected: split, quiet, embedded, limit))")
        :format(tostring(k)), 2)
    end
  end
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error(("bad argument #1 to 'default' (field 'split': one of \"train\"|\"test\" expected, got %s)")
      :format(type(split) == "string" and ('"' .. split .. '"') or type(split)), 2)
  end
  local dir, source
  if not opts.embedded and has_split(DEBIAN_DIR, split) then
    dir, source = DEBIAN_DIR, "debian"
  else
    for _, d in ipairs(embedded_dirs()) do
      if has_split(d, split) then dir, source = d, "embedded" break end
    end
  end
  if not dir then
    error("nn.data.default: no Fashion-MNIST found (install dataset-fashion-mnist, or set "
      .. "NEURONAS_DATASETS to a folder holding fashion-mnist/)", 2)
  end
  local ds = core.data.open({ format = "idx", path = dir, split = split, name = "fashion-mnist",
    source = source, classes = 10, mean = FMNIST_MEAN, std = FMNIST_STD, limit = opts.limit })
  if not opts.quiet then
    io.stderr:write(("neuronas: data: Fashion-MNIST %s, %d images from %s (%s)\n"):format(split,
      ds.size, dir, source == "debian" and "Debian package dataset-fashion-mnist"
        or "embedded subset"))
  end
  return ds
end

return data
