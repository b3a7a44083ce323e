-- tests/spec/browser_spec.lua: the HTML report of a small main-job run, loaded in headless
-- Chromium (Debian's `chromium`, installed by `scripts/setup.sh --test`, which scripts/test.sh
-- runs): the DOM the browser built after load holds one point per evaluated candidate in every
-- plot, the front's line, both cell graphs with their edges, the per-layer bars; each SVG of the
-- file passes xmllint; screenshots (desktop and phone widths) are kept in the build dir as
-- artefacts (report-artefacts/).
local H = require("helpers")
local X = require("xmlcheck")
local json = require("neuronas.json")
local nn = require("neuronas")

local function abspath(p)
  local _, out = H.run("realpath " .. H.q(p))
  return (out:gsub("%s+$", ""))
end

-- PNG width and height from the IHDR chunk
local function png_size(p)
  local s = H.slurp(p)
  assert.are.equal("\137PNG\r\n\26\n", s:sub(1, 8))
  return string.unpack(">I4I4", s, 17)
end

local dir = H.build .. "/report-artefacts"
os.execute("mkdir -p " .. H.q(dir))
-- the browser must not inherit the sanitizer preload of the ASan build's spec runner
local CHROMIUM = "env -u LD_PRELOAD -u ASAN_OPTIONS chromium --headless --no-sandbox --disable-gpu --hide-scrollbars"
  .. " --no-first-run --user-data-dir=" .. H.q(dir .. "/chromium-profile")

describe("the HTML report in headless Chromium", function()
  local html, jsonp, doc, dom

  setup(function()
    html, jsonp = dir .. "/report.html", dir .. "/report.json"
    local code, _, err = H.run(H.q(H.cli) .. " run scripts/neuronas.lua --quiet --cells 24 --threads 1 --journal "
      .. H.q(dir .. "/report.journal") .. " --json " .. H.q(jsonp) .. " --html " .. H.q(html))
    assert(code == 0, "main job failed: " .. err)
    doc = json.decode(H.slurp(jsonp))
    local c, out, cerr = H.run(CHROMIUM .. " --dump-dom " .. H.q("file://" .. abspath(html)))
    assert(c == 0, "chromium --dump-dom failed (is Debian's chromium installed? scripts/setup.sh --test): " .. cerr)
    dom = out
  end)

  it("needs nothing from outside: no script, no link, no remote URL", function()
    local page = H.slurp(html)
    assert.falsy(page:find("<script", 1, true))
    assert.falsy(page:find("<link", 1, true))
    assert.falsy(page:find("@import", 1, true))
    for url in page:gmatch("https?://[^\"'%s<>)]+") do assert.are.equal("http://www.w3.org/2000/svg", url) end
    for u in page:gmatch("url%(([^)]*)%)") do assert.are.equal("#", u:sub(1, 1)) end
  end)

  it("has one point per evaluated candidate in every score-vs-cost plot, and the front's line", function()
    local n = #doc.results
    -- every candidate the run evaluated: the stage-1 pre-filter may leave fewer than 2 x 24
    assert.are.equal(doc.counts.evaluated, n)
    assert.is_true(n > 24 and n <= 48)
    local plots = 0
    for s in dom:gmatch("<svg[^>]*class=\"plot scatter\".-</svg>") do
      plots = plots + 1
      assert.are.equal(n, H.count(s, "<circle class=\"pt "))
      assert.are.equal(1, H.count(s, "<polyline class=\"front%-line\""))
      assert.are.equal(1, H.count(s, "<line class=\"limit\""))
      assert.are.equal(1, H.count(s, "<polyline class=\"chosen\""))
    end
    assert.are.equal(4, plots)
    -- greyed: every unscored candidate sits in the band
    local unscored = 0
    for _, r in ipairs(doc.results) do if r.score == json.null then unscored = unscored + 1 end end
    assert.are.equal(4 * unscored, H.count(dom, "<circle class=\"pt unscored\""))
  end)

  it("draws both cells of the chosen network as graphs, edges labelled by op", function()
    for _, id in ipairs({ "cellA", "cellB" }) do
      local s = dom:match("<svg[^>]*id=\"" .. id .. "\".-</svg>")
      assert.truthy(s, id .. " missing")
      local want = {}
      for _, e in ipairs(nn.cell(doc.best[id]):edges()) do
        if e.op ~= "zero" then want[#want + 1] = e.op end
      end
      assert.are.equal(#want, H.count(s, "<path class=\"edge "))
      assert.are.equal(4, H.count(s, "<circle class=\"node\""))
      local labels = {}
      for op in s:gmatch("<text class=\"edge%-label\"[^>]*>([^<]*)</text>") do labels[#labels + 1] = op end
      table.sort(want)
      table.sort(labels)
      assert.are.same(want, labels)
    end
  end)

  it("draws the per-layer bars and the progress of both stages", function()
    local layers = #doc.best.layers
    assert.is_true(layers >= 3)
    for _, k in ipairs({ "area", "energy", "latency" }) do
      assert.are.equal(layers, H.count(dom, "<rect class=\"bar bar%-" .. k .. "\""))
    end
    local prog = dom:match("<svg[^>]*class=\"plot progress%-plot\".-</svg>")
    assert.are.equal(2, H.count(prog, "<polyline class=\"progress "))
  end)

  it("every SVG of the file is well-formed XML (xmllint)", function()
    local svgs = X.svgs(H.slurp(html))
    assert.is_true(#svgs >= 8)
    for i, s in ipairs(svgs) do
      local p = dir .. "/figure-" .. i .. ".svg"
      local f = assert(io.open(p, "wb"))
      f:write(s)
      f:close()
      local code, _, err = H.run("xmllint --noout " .. H.q(p))
      assert.are.equal(0, code, err)
    end
  end)

  it("takes screenshots at desktop and phone widths (kept as artefacts)", function()
    for _, v in ipairs({ { "report.png", 1280, 3000 }, { "report-phone.png", 390, 5200 } }) do
      local png = dir .. "/" .. v[1]
      os.remove(png)
      local code, _, err = H.run(CHROMIUM .. string.format(" --window-size=%d,%d --screenshot=%s %s", v[2], v[3],
        H.q(abspath(dir) .. "/" .. v[1]), H.q("file://" .. abspath(html))))
      assert.are.equal(0, code, err)
      local w, h = png_size(png)
      assert.are.equal(v[2], w)
      assert.are.equal(v[3], h)
    end
  end)
end)
