-- neuronas/cells.lua: Lua sugar for genotypes and search spaces (docs/model.md).
-- nn.cell(x) builds a neuronas.Cell (the __call is C, so errors point at the caller's line);
-- nn.cell.parse(text, form) parses one text form; nn.cell.ops lists the op names (docs/model.md).
-- nn.space is the C constructor itself (engine/lua/l_space.c).
return function(M, core)
  local ops = {}
  for i, name in ipairs(core.cell_ops) do ops[i] = name end
  M.cell = setmetatable({ parse = core.cell_parse, ops = ops }, { __call = core.cell_call })
  M.cell_parse, M.cell_call, M.cell_ops = nil, nil, nil
end
