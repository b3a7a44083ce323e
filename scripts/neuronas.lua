-- scripts/neuronas.lua: the main job: NeuroNAS's two-stage hardware-aware cell search (docs/search.md,
-- Alg. 1 with a feasibility-aware stage 1 and the stage-2 fix) on the embedded default data.
-- `--help` lists the flags; --strategy, --constraints and --hardware take a user's own parts, and
-- a script of one's own gets the same run with require("neuronas.app").main{ ... } (docs/search.md).
-- Exit status: 0 an architecture meeting every constraint was found; 3 none was (the report is
-- still written); 2 bad flags; 1 an error; 130 interrupted (the journal stays valid: --resume).
os.exit(require("neuronas.app").main({ args = { ... },
  description = "Two-stage hardware-aware SNN cell search (NeuroNAS Alg. 1, docs/search.md)." }))
