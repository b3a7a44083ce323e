-- neuronas/search.lua: the search library's face. One concept per file under neuronas/search/:
--   options    the setup table (defaults, checks)   pipeline   build -> quantize -> cost -> score
--   journal    the resumable journal                 evaluator  evaluate(candidates) -> results
--   run        the ask/tell loop                     pareto     Pareto front, nearest misses
--   hypervolume  objectives, non-dominated sort, crowding, the front and its hypervolume
--   two_stage, random, evolution, nsga2: the strategies, each with its one-call entry point.
--   knobs      hardware knobs a candidate may carry (nsga2's `knobs =`: the hardware co-search)
--   mpi        the distributed evaluator (docs/cluster.md)
-- A strategy is any object with ask() and tell(results); see neuronas/search/run.lua.
local options = require("neuronas.search.options")
local pipeline = require("neuronas.search.pipeline")
local evaluator = require("neuronas.search.evaluator")
local run = require("neuronas.search.run")
local pareto = require("neuronas.search.pareto")
local two_stage = require("neuronas.search.two_stage")
local random = require("neuronas.search.random")
local evolution = require("neuronas.search.evolution")
local nsga2 = require("neuronas.search.nsga2")
local hypervolume = require("neuronas.search.hypervolume")
local mpi = require("neuronas.search.mpi")

return {
  setup = options.setup,
  constraint_set = options.constraint_set,
  engine_pipeline = pipeline.engine_pipeline,
  evaluator = evaluator.new,
  key = evaluator.key,
  run = run.run,
  pareto = pareto.pareto,
  nearest_misses = pareto.nearest_misses,
  two_stage_strategy = two_stage.strategy,
  random_strategy = random.strategy,
  evolution_strategy = evolution.strategy,
  nsga2_strategy = nsga2.strategy,
  two_stage = two_stage.search,
  random = random.search,
  evolution = evolution.search,
  nsga2 = nsga2.search,
  front = hypervolume.front,
  hypervolume = hypervolume.hypervolume,
  mpi_pipeline = mpi.pipeline,
  mpi_evaluator = mpi.evaluator,
}
