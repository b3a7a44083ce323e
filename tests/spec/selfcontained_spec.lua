-- selfcontained_spec.lua: the repository stands on its own: no test, script, build file, doc or
-- source reads a path outside the checkout (a lone `git clone` runs the whole suite) or points
-- at notes and tracker issues users do not have.
describe("self-contained repository", function()
  -- the patterns are split so that this file does not match itself
  local bad = {
    { "%.%./" .. "shared", "a sibling '../" .. "shared' directory" },
    { "/work" .. "/", "an absolute path of the development machine" },
    { "shared" .. "/fixtures", "the old fixture location" },
    { "/home" .. "/", "a home directory" },
    { "SPEC" .. "%.md", "the development notes' formula file (say it in the project's own docs)" },
    { "ST" .. "YLE%.md", "the development notes' style file" },
    { "[Ii]ssue" .. " #?%d", "a tracker issue number (say what the code does instead)" },
  }
  local function files()
    local p = assert(io.popen("git ls-files -- tests scripts engine lua include examples docs README.md CMakeLists.txt cmake rockspecs 2>/dev/null"))
    local list = {}
    for l in p:lines() do list[#list + 1] = l end
    p:close()
    return list
  end

  it("lists the tracked files (the check below is not vacuous)", function()
    local n = #files()
    assert.is_true(n > 50, "git ls-files found only " .. n .. " files")
  end)

  it("has no reference to a path outside the repository", function()
    local hits = {}
    for _, name in ipairs(files()) do
      if not name:match("%.safetensors$") and not name:match("%.gz$") then
        local f = io.open(name, "rb")
        if f then
          local n = 0
          for line in f:lines() do
            n = n + 1
            for _, b in ipairs(bad) do
              if line:find(b[1]) then hits[#hits + 1] = name .. ":" .. n .. ": " .. b[2] end
            end
          end
          f:close()
        end
      end
    end
    assert.are.same({}, hits)
  end)

  it("keeps the SNASNet fixture inside the repository", function()
    for _, f in ipairs({ "weights", "inputs", "result", "kernel_f64" }) do
      local p = "tests/fixtures/snasnet-backward/" .. f .. ".safetensors"
      local h = io.open(p, "rb")
      assert.truthy(h, p .. " is missing")
      h:close()
    end
  end)
end)
