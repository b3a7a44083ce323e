-- tests/spec/report_html_spec.lua: the SVG writer and the HTML report: escaping, well-formed SVG
-- (checked by an independent checker), empty and one-point runs, and random runs whose costs and
-- scores include NaN and infinities, none of which may reach an SVG attribute.
local svg = require("neuronas.svg")
local report_html = require("neuronas.report_html")
local X = require("xmlcheck")
local H = require("helpers")

-- attribute values of every SVG of a page
local function svg_attr_values(html)
  local vals = {}
  for _, s in ipairs(X.svgs(html)) do
    for tag in s:gmatch("<([^<>]*)>") do
      for name, v in tag:gmatch('([%a_][%w_%-:%.]*)="([^"]*)"') do vals[#vals + 1] = { name, v } end
    end
  end
  return vals
end

local function no_nonfinite(html)
  for _, nv in ipairs(svg_attr_values(html)) do
    local v = nv[2]:lower()
    if v:find("%f[%a]nan%f[%A]") or v:find("%f[%a]inf%f[%A]") then
      return false, nv[1] .. '="' .. nv[2] .. '"'
    end
  end
  return true
end

local CELL_A = "conv3x3 skip skip skip conv3x3 skip"
local CELL_B = "conv3x3 avgpool3x3 avgpool3x3 skip skip skip"

local function result(i, t)
  t.index = t.index or i
  t.cellA = t.cellA or CELL_A
  t.cellB = t.cellB or CELL_B
  t.violation = t.violation or 0
  return t
end

describe("neuronas.svg", function()
  it("leaves _G alone", function()
    local before = H.globals()
    local d = svg.new(10, 10)
    d:add("circle", { cx = 1, cy = 2, r = 1 })
    d:render()
    report_html.render(report_html.model({ results = {} }))
    assert.are.same({}, H.new_globals(before))
  end)

  it("escapes text and attribute values", function()
    assert.are.equal("&lt;a&amp;b&gt; &quot;q&quot; &#39;s&#39;", svg.escape("<a&b> \"q\" 's'"))
    local d = svg.new(100, 50)
    d:text(1, 2, "<a&b>", { class = 'x"y' })
    local s = d:render()
    assert.truthy(s:find('<text class="x&quot;y" x="1" y="2">&lt;a&amp;b&gt;</text>', 1, true))
    assert.is_true(X.check(s))
    -- control characters are not XML: dropped
    assert.are.equal("ab", svg.escape("a\1b"))
    -- the page is UTF-8: bytes that are not (a name from a user's file) become U+FFFD
    assert.are.equal("a\u{FFFD}b \u{e9}", svg.escape("a\xffb \u{e9}"))
  end)

  it("refuses a non-finite number in any attribute, naming it", function()
    local d = svg.new(10, 10)
    assert.has_error(function() d:add("circle", { cx = 0 / 0 }) end,
      "svg: attribute 'cx': finite number expected, got " .. tostring(0 / 0))
    assert.has_error(function() d:add("rect", { width = math.huge }) end,
      "svg: attribute 'width': finite number expected, got inf")
    assert.has_error(function() d:polyline({ { 0, 1 }, { -math.huge, 2 } }) end,
      "svg: attribute 'points': finite number expected, got -inf")
    assert.has_error(function() svg.new(0 / 0, 1) end)
  end)

  it("writes numbers with at most two decimals, no -0", function()
    assert.are.equal("1.5", svg.num(1.5))
    assert.are.equal("2", svg.num(2.0))
    assert.are.equal("0.33", svg.num(1 / 3))
    assert.are.equal("0", svg.num(-0.001))
    assert.are.equal("-12.35", svg.num(-12.345678))
  end)

  it("ticks: nice steps covering the range", function()
    local t, step = svg.ticks(0, 39, 5)
    assert.are.same({ 0, 10, 20, 30 }, t)
    assert.are.equal(10, step)
    t, step = svg.ticks(-94.4, -49.8, 5)
    assert.are.same({ -90, -80, -70, -60, -50 }, t)
    t = svg.ticks(2.02, 2.02)
    assert.are.same({ 2.02 }, t)
    assert.are.same({}, (svg.ticks(0, 0 / 0)))
    assert.are.equal("28,000", svg.tick_label(28000, 1000))
    assert.are.equal("0.25", svg.tick_label(0.25, 0.05))
  end)
end)

describe("neuronas.report_html", function()
  it("renders an empty run: every figure, no point, says nothing was feasible", function()
    local html = report_html.render(report_html.model({ results = {}, constraints = { energy = 39 } }))
    assert.truthy(html:find("No feasible architecture", 1, true))
    local svgs = X.svgs(html)
    assert.is_true(#svgs >= 5)
    for _, s in ipairs(svgs) do assert.is_true(X.check(s)) end
    assert.are.equal(0, H.count(html, '<circle class="pt '))
    assert.are.equal(4, H.count(html, 'class="plot scatter"'))
    assert.is_true(no_nonfinite(html))
  end)

  it("renders a one-point run with its point, front and chosen mark", function()
    local r = result(1, { cost = { energy_uj = 10, area_mm2 = 2, latency_ms = 20, memory_params = 5000 },
      feasible = true, score = -50, stage = 1 })
    local m = report_html.model({ results = { r }, best = r, constraints = { energy = 39, area = 5.6 } })
    assert.are.equal(1, #m.front)
    local html = report_html.render(m)
    for _, s in ipairs(X.svgs(html)) do assert.is_true(X.check(s)) end
    -- one point per scatter plot, a front line and a chosen marker in each
    assert.are.equal(4, H.count(html, '<circle class="pt ok"'))
    assert.are.equal(4, H.count(html, '<polyline class="front%-line"'))
    assert.are.equal(4, H.count(html, '<polyline class="chosen"'))
    assert.are.equal(2, H.count(html, 'class="cell%-graph"'))
    assert.is_true(no_nonfinite(html))
  end)

  it("escapes a constraint named <a&b> and hostile genotype and layer names", function()
    local r = result(1, { cost = { energy_uj = 10, area_mm2 = 2, latency_ms = 20, memory_params = 5000 },
      feasible = true, score = -50,
      checks = { { name = "<a&b>", value = 1, limit = 2, ok = true, unit = "<u>" } } })
    local m = report_html.model({ results = { r }, best = r, constraints = {}, sources = { ["<a&b>"] = "file <x>.lua" },
      layers = { { name = "<l&>", area_mm2 = 1, energy_uj = 1, latency_ms = 1 } }, strategy = "<s>",
      settings = { label = "</script>" } })
    local html = report_html.render(m)
    assert.falsy(html:find("<a&b>", 1, true))
    assert.truthy(html:find("&lt;a&amp;b&gt;", 1, true))
    assert.truthy(html:find("file &lt;x&gt;.lua", 1, true))
    assert.falsy(html:find("<l&>", 1, true))
    assert.falsy(html:find("</script>", 1, true))
    assert.falsy(html:find("<script", 1, true))
    for _, s in ipairs(X.svgs(html)) do assert.is_true(X.check(s)) end
  end)

  it("random runs with NaN, inf and missing values: well-formed, nothing non-finite in an attribute", function()
    math.randomseed(7)
    local odd = { 0 / 0, math.huge, -math.huge }
    local function val(scale)
      local u = math.random()
      if u < 0.08 then return odd[math.random(1, 3)] end
      if u < 0.12 then return nil end
      return math.random() * scale
    end
    for trial = 1, 25 do
      local n = math.random(0, 60)
      local results = {}
      for i = 1, n do
        local feasible = math.random() < 0.6
        local sv = val(50)
        results[i] = result(i, {
          cost = { energy_uj = val(80), area_mm2 = val(12), latency_ms = val(60), memory_params = val(70000) },
          feasible = feasible, score = (feasible and sv) and -sv or nil, stage = math.random(1, 2),
          violation = feasible and 0 or math.random(),
        })
      end
      local best
      for _, r in ipairs(results) do if r.feasible and r.score then best = r end end
      local layers = {}
      for i = 1, math.random(0, 4) do layers[i] = { name = "l" .. i, area_mm2 = val(1), energy_uj = val(1), latency_ms = val(1) } end
      local m = report_html.model({ results = results, best = best, layers = layers,
        constraints = { energy = 39, area = 5.6, latency = 30, memory = 28000 } })
      assert.is_true(svg.finite(m.hypervolume))
      local html = report_html.render(m)
      for _, s in ipairs(X.svgs(html)) do
        local ok, why = X.check(s)
        assert.is_true(ok, why)
      end
      local ok, where = no_nonfinite(html)
      assert.is_true(ok, where)
      -- a point for every candidate whose cost on the axis is finite
      local want = 0
      for _, r in ipairs(results) do
        if svg.finite(r.cost.energy_uj or 0 / 0) then want = want + 1 end
      end
      local first
      for _, s in ipairs(X.svgs(html)) do
        if s:find('data-field="energy_uj"', 1, true) then first = s end
      end
      assert.are.equal(want, H.count(first, '<circle class="pt '))
    end
  end)

  it("the checker itself rejects what is not well-formed", function()
    assert.is_false((X.check("<svg><g></svg>")))
    assert.is_false((X.check('<svg a="1" a="2"/>')))
    assert.is_false((X.check("<svg>a & b</svg>")))
    assert.is_false((X.check("<svg x=1/>")))
    assert.is_true((X.check('<svg a="&lt;"><g/>t&amp;</svg>')))
  end)

  it("loads a --json report and refuses other files naming them", function()
    local r = result(1, { cost = { energy_uj = 10, area_mm2 = 2, latency_ms = 20, memory_params = 5000 },
      feasible = true, score = -50, stage = 1 })
    local rep = { results = { r }, best = r, feasible = true, nearest = {}, pareto = { r },
      counts = { evaluated = 1, scored = 1, skipped = 0, cached = 0 }, seconds = 1.5, strategy = "two_stage" }
    local path = H.tmpfile(require("neuronas.report").to_json(rep, { constraints = { energy = 39 } }))
    local m = report_html.load(path)
    assert.are.equal(1, #m.results)
    assert.are.equal(-50, m.best.score)
    assert.are.equal(39, m.limits.energy_uj)
    os.remove(path)
    local bad = H.tmpfile("index,stage\n1,2\n")
    assert.has_error(function() report_html.load(bad) end)
    local ok, err = pcall(report_html.load, bad)
    assert.is_false(ok)
    assert.truthy(err:find(bad, 1, true))
    os.remove(bad)
  end)

  it("refuses a --json report whose results it cannot draw, naming the file, the result and the field", function()
    local good = '{"cellA":"' .. CELL_A .. '","cellB":"' .. CELL_B .. '","cost":{"energy_uj":1},"score":-3}'
    local cases = {
      { '{"results":[1,2]}', "results[1]: an object expected" },
      { '{"results":[' .. good .. ',{"cost":7,"score":"x","cellA":5}]}', "results[2]: field 'cellA': cell string expected" },
      { '{"results":[{"cellA":"a","cellB":"b","cost":7}]}', "results[1]: field 'cost': object expected" },
      { '{"results":[{"cellA":"a","cellB":"b","cost":{"e":[1]}}]}', "results[1]: field 'cost.e': number, string or boolean expected" },
      { '{"results":[{"cellA":"a","cellB":"b","score":"x"}]}', "results[1]: field 'score': number" },
      { '{"results":[{"cellA":"a","cellB":"b","feasible":1}]}', "results[1]: field 'feasible': boolean expected" },
      { '{"results":[' .. good .. '],"best":{"cellA":1}}', "best: field 'cellA': cell string expected" },
      { '{"results":null}', "no 'results' list" },
    }
    for _, c in ipairs(cases) do
      local path = H.tmpfile(c[1])
      local ok, err = pcall(report_html.load, path)
      os.remove(path)
      assert.is_false(ok, c[1])
      assert.are.equal(path .. ": " .. c[2], err:sub(1, #path + 2 + #c[2]), c[1])
    end
    -- the good one draws, its score read back ("-inf" as written for a singular kernel too)
    local path = H.tmpfile('{"results":[' .. good .. ',' .. good:gsub("%-3", '"-inf"') .. ']}')
    local m = report_html.load(path)
    os.remove(path)
    assert.are.same({ -3, -math.huge }, { m.results[1].score, m.results[2].score })
  end)

  it("refuses a folder, a device and a pipe before reading them", function()
    local dir = H.tmpname("-dir")
    assert.is_true(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/pipe"))
    for _, c in ipairs({ { dir, ": is a folder, a file expected" }, { "/dev/zero", ": not a regular file" },
      { dir .. "/pipe", ": not a regular file" }, { dir .. "/none", ": No such file or directory" } }) do
      local ok, err = pcall(report_html.load, c[1])
      assert.is_false(ok)
      assert.are.equal("cannot read " .. c[1] .. c[2], err)
    end
    os.execute("rm -rf " .. dir)
  end)

  it("leaves a journal's malformed lines out of the report and says which", function()
    local journal = require("neuronas.search.journal")
    local head = '{"journal":"neuronas","version":"x","settings":{"preset":"fashion-mnist"}}'
    local rec = '{"key":"' .. CELL_A .. ' | ' .. CELL_B .. '","cost":{"memory_params":1,"area_mm2":1,'
      .. '"latency_ms":1,"energy_uj":1},"scored":true,"score":-2}'
    local path = H.tmpfile(table.concat({ head, rec, '{"key":"a | b","cost":5}', "[1]", "{oops", rec }, "\n") .. "\n")
    local seen, old = {}, journal.warn
    journal.warn = function(msg) seen[#seen + 1] = msg end
    local ok, m = pcall(report_html.load, path)
    journal.warn = old
    os.remove(path)
    assert.is_true(ok, m)
    assert.are.equal(2, #m.results)
    assert.are.equal(3, #seen)
    assert.are.equal(path .. ": line 3 left out of the report: field 'cost': object expected", seen[1])
    assert.are.equal(path .. ": line 4 left out of the report: not a JSON object", seen[2])
    assert.truthy(seen[3]:find(path .. ": line 5 left out of the report: ", 1, true), seen[3])
  end)
end)

describe("scripts/report.lua", function()
  local dir = H.tmpname("-report")
  local function run(args)
    return H.run(H.q(H.cli) .. " run scripts/report.lua " .. args)
  end

  it("redraws a --json report under overriding limits, and refuses bad flags at once with exit 2", function()
    assert.is_true(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/pipe"))
    local json_path, html = dir .. "/run.json", dir .. "/r.html"
    local code, _, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --cells 2 --quiet --json " .. json_path)
    assert.are.equal(0, code, err)
    -- a limit flag overrides the report's limits: the front is drawn again under it
    local out
    code, out, err = run(json_path .. " --html " .. html .. " --memory 30000")
    assert.are.equal(0, code, err)
    assert.truthy(out:find("^" .. html:gsub("%p", "%%%0") .. ": %d+ candidates, %d+ on the feasible front"), out)
    code, out, err = run(json_path .. " --html " .. html .. " --memory 1")
    assert.are.equal(0, code, err)
    assert.truthy(out:find(": %d+ candidates, 0 on the feasible front, hypervolume 0\n$"), out)
    for _, c in ipairs({
      { " --html " .. dir .. "/pipe", "--html " .. dir .. "/pipe: not a regular file (a file path expected)" },
      { " --html " .. dir .. "/no/r.html", "--html: cannot write " .. dir .. "/no/r.html: No such file or directory" },
      { " --html " .. html .. " --objectives ''", "--objectives: non-empty list expected, got table" },
      { " --html " .. html .. " --objectives foo", "--objectives: front: objectives[1]: unknown field 'foo'" },
      -- a cost field that holds text (the chip's mode) is no objective
      { " --html " .. html .. " --objectives score,mode", "--objectives: front: objectives[2]: unknown field 'mode'" },
    }) do
      code, out, err = run(json_path .. c[1])
      assert.are.equal(2, code, c[1] .. ": " .. err)
      assert.are.equal("", out)
      assert.are.equal("report.lua: " .. c[2], err:match("^[^\n]*"):sub(1, #c[2] + 12), c[1])
      assert.truthy(err:find("\nusage: neuronas run report.lua", 1, true), c[1])
    end
    os.execute("rm -rf " .. dir)
  end)

  it("chooses the network again under an overriding limit, with its checks against that limit", function()
    local json = require("neuronas.json")
    local d = H.tmpname("-override")
    assert.is_true(os.execute("mkdir " .. d))
    local js, html = d .. "/run.json", d .. "/r.html"
    local code, _, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --cells 20 --batch 16 --quiet --journal "
      .. d .. "/j --json " .. js)
    assert.are.equal(0, code, err)
    local doc = json.decode(H.slurp(js))
    -- a limit just below the chosen network's energy: the best of the others that meet it wins
    local limit = doc.best.cost.energy_uj - 1e-9
    local want
    for _, r in ipairs(doc.results) do
      if r.feasible and type(r.score) == "number" and r.cost.energy_uj <= limit and (not want or r.score > want.score) then
        want = r
      end
    end
    assert.is_table(want, "the run has another feasible network below the best's energy")
    code, _, err = run(js .. " --html " .. html .. string.format(" --energy %.17g", limit))
    assert.are.equal(0, code, err)
    local text = H.slurp(html):gsub("<[^>]*>", " "):gsub("%s+", " ")
    assert.truthy(text:find(string.format("Best feasible fitness score %.3f (candidate %d,", want.score, want.index), 1, true),
      text:match("Best feasible[^.]*"))
    os.execute("rm -rf " .. d)
  end)
end)
