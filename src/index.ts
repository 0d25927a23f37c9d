/**
 * ssfer's public API, `import { … } from 'ssfer'`: what a plugin needs, and only that. A plugin
 * file in any folder imports it by that name (the plugin loader resolves `ssfer` to the running
 * installation), and internal paths are not part of it. docs/plugins.md shows each kind in use.
 *
 * It holds the plugin definition and its option schemas, the contract of every kind, the
 * building blocks the built-in plugins train and load data with, and tfjs itself: `tf` is the
 * project's own instance, so a plugin never loads a second copy (importing `@tensorflow/tfjs`
 * from a plugin gives the same one). The orchestrator (recipes, pipeline, CLI) is not in it.
 */

/** TensorFlow.js: the instance the core computes with (same engine, same Tensor class). */
export * as tf from '@tensorflow/tfjs';

// Defining plugins and kinds.
export {
  definePlugin,
  type ContractOf,
  type PluginContext,
  type PluginContracts,
  type PluginDefinition,
  type PluginModule,
  type PluginRequirement,
} from './core/plugin.ts';
export { defineKind, type KindDeclaration } from './core/kinds.ts';
export {
  choice,
  nullable,
  options,
  pair,
  slot,
  Type,
  type JsonSchema,
  type PluginSlot,
  type Static,
  type TObject,
  type TProperties,
  type TSchema,
} from './core/schema.ts';
export { createPlugin, PluginLoadError } from './core/registry.ts';
export { deriveSeed, Rng } from './core/rng.ts';
export type { Json } from './core/json.ts';
export { UsageError } from './core/errors.ts';
export { writeAtomic, writeJson } from './core/files.ts';

// The contract of each kind the core names.
export {
  isTokenBackbone,
  type Backbone,
  type BackboneFactory,
  type BuildOptions,
  type ForwardOptions,
  type LoadStateOptions,
  type LoadStateReport,
  type NamedTensors,
  type ParameterCount,
  type ParamModule,
  type TokenBackbone,
  type TransformerStack,
  type TransformerStackSpec,
} from './contracts/backbone.ts';
export type { Analysis, AnalysisFile, AnalysisInput, AnalysisResult, FigureTree } from './contracts/analysis.ts';
export type { DatasetSource, FerData, ImagePool, LoadRequest, Split } from './contracts/dataset.ts';
export type {
  CellState,
  CheckpointStore,
  FineTuneResult,
  FineTuningStage,
  Metrics,
  PretrainResult,
  Pretrainer,
  PretrainState,
  SavedTraining,
  Stage,
  StageHooks,
  StagePlan,
  StageResult,
  StepLog,
} from './contracts/stages.ts';
export type {
  CellAxis,
  CellInfo,
  CellModel,
  CellResult,
  CellRun,
  CellSummaryInfo,
  DatasetInput,
  RunInfo,
  RunStatus,
  SharedStage,
  Tracker,
} from './contracts/tracker.ts';
export type { Launcher, LaunchResult, LaunchRun, LaunchUnit, UnitStatus, WorkerCommand } from './contracts/launcher.ts';
export type {
  Augmentation,
  Batch,
  BoxRequest,
  FaceBoxes,
  FaceBoxSource,
  FoundFace,
  LabelSplit,
  MixingContext,
  MixingStrategy,
  Photo,
  Sampler,
  SplitInfo,
} from './contracts/training.ts';
export type { SearchDimension, Trial, Tuner, TuningResult } from './contracts/tuner.ts';
// The kinds FaceMix declares for its nested slots (`kappa`, `mix-loss`).
export type { KappaInput, KappaMetric, MixLoss } from '../plugins/mixing/internal/kinds.ts';

// Training: losses, batches, the one training loop, AdamW, EMA, schedules, stage health.
export { crossEntropy, reduce, smoothedTargets, softTargetCrossEntropy, weightedMean, type Labels, type Reduction } from './train/losses.ts';
export { epochBatches, gatherBoxes, gatherImages, gatherLabels } from './train/batches.ts';
export { TrainLoop, type Budget, type LoopResult, type StepPosition, type TrainProgram } from './train/loop.ts';
export { AdamW, defaultNoDecay, type AdamWOptions, type Gradients } from './train/optimizer.ts';
export { Ema } from './train/ema.ts';
export { withoutTape } from './engine/tape.ts';
export { cosineDecayLr, stepDecayLr, timmCosineLr, warmupCosineLr, type StepDecay, type TimmCosine, type WarmupCosine } from './train/schedule.ts';
export { trainingStageOptions, type StageDefaults, type TrainingStageOptions } from './train/stage-options.ts';
export { lossHealth } from './train/health.ts';
export type { TrainingParts } from './train/resume.ts';
// A backbone's ONNX graph, for `ssfer export` (BackboneFactory.onnxGraph).
export { GraphBuilder, INPUT_NAME, OUTPUT_NAME } from './onnx/graph.ts';
export type { OnnxGraph } from './onnx/proto.ts';
// A backbone's named weights: creation, state() and a checked loadState(), as every built-in backbone keeps them.
export { loadInto, ParamSet, stateOf } from '../plugins/backbone/vit/params.ts';

// Data: class names, stratified label splits, datasets read from disk, pictures.
export { classNames, EXPRESSIONS_7, EXPRESSIONS_8, type Expression } from './data/expressions.ts';
export { fractionQuota, indicesByClass, stratifiedPick } from './data/stratify.ts';
export { loadIndexed, type DatasetIndex, type IndexEntry, type LoadContext } from './data/load.ts';
export type { Box, ImageSource } from './data/decode.ts';
export { DatasetError, DropCounter, EntryProblem, IssueLog, type OnError, type Place } from './data/errors.ts';
export { columnsOf, linesOf, readIndexFile, splitCsv, type IndexFile, type IndexLine } from './data/index-file.ts';
export { imageGridPng } from './data/picture.ts';
