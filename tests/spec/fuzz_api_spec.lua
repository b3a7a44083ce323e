-- fuzz_api_spec.lua: the bounded run of the API misuse generator (tests/fuzz/api_fuzz.lua,
-- docs/reliability.md): a fixed seed, 3,000 calls, in a child process (a crash or a sanitizer
-- report is its exit status) inside a scratch folder (save methods write files there). Under
-- the sanitizer build the child inherits the preloaded ASan/UBSan runtimes of run-spec.sh.
local H = require("helpers")

local SRC = assert(io.popen("pwd")):read("l")

describe("the API misuse generator", function()
  it("makes 3,000 calls with seed 1: no crash, every error a string naming its cause, no NaN", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. H.q(dir)))
    local lpath = SRC .. "/lua/?.lua;" .. SRC .. "/lua/?/init.lua;;"
    local cpath = H.build .. "/lua/?.so;;"
    -- memory is capped so that a bound that went missing fails the call, not the machine: under
    -- ASan an allocation above 2 GiB returns NULL (the engine's out-of-memory error, as in
    -- Release), else the address space is limited to 8 GiB
    local asan = os.getenv("ASAN_OPTIONS")
    local env = asan and ("ASAN_OPTIONS=" .. H.q(asan .. ":allocator_may_return_null=1:max_allocation_size_mb=2048") .. " ")
      or "ulimit -v 8388608 && "
    local code, out, err = H.run("cd " .. H.q(dir) .. " && " .. env .. "LUA_PATH=" .. H.q(lpath) .. " LUA_CPATH="
      .. H.q(cpath) .. " lua5.4 " .. H.q(SRC .. "/tests/fuzz/api_fuzz.lua") .. " --seed 1 --calls 3000")
    os.execute("rm -rf " .. H.q(dir))
    assert.equal(0, code, out .. err)
    -- the summary: every call counted, none failed
    local calls, fns, failed = out:match("api%-fuzz: seed 1: (%d+) calls of (%d+) functions and methods, %d+ raised, (%d+) failed")
    assert.equal("3000", calls, out)
    assert.equal("0", failed)
    assert.is_true(tonumber(fns) >= 140, "functions and methods walked: " .. tostring(fns))
  end)
end)
