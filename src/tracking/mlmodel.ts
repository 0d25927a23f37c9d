import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';

/**
 * An exported ONNX model as an MLflow Model: the files `mlflow.onnx.log_model` writes beside
 * model.onnx (MLflow 3.x), so that `mlflow.pyfunc.load_model("runs:/<run>/model")` and
 * `mlflow.onnx.load_model` load it:
 *   MLmodel            the `onnx` flavor and `python_function` (loader mlflow.onnx), the tensor
 *                      signature, and ssfer's metadata (class names, preprocessing, source)
 *   conda.yaml, python_env.yaml, requirements.txt   the environment to load it in
 * ssfer writes no Python, so where MLflow pins the versions it ran with, these name MLflow as
 * the tracking server reports itself, the Python version the tracker is told, and the oldest
 * onnx and onnxruntime that read opset 17.
 */

export const ONNX_FILE = 'model.onnx';
/** onnx 1.12 introduced opset 17, onnxruntime 1.12 runs it. */
const ONNX_REQUIREMENTS = ['numpy', 'onnx>=1.12', 'onnxruntime>=1.12'];

export interface MlflowModelSpec {
  readonly imageSize: number;
  readonly channels: number;
  readonly classes: number;
  /** Written as the MLmodel's `metadata` (mlflow's `Model.metadata`). */
  readonly metadata: Record<string, unknown>;
  /** The Python version the environment files name (`3.10`). */
  readonly pythonVersion: string;
}

export interface MlflowModelPlace {
  readonly runId: string;
  /** The MLflow 3 logged model, when the server has them. */
  readonly modelId: string | null;
  /** Where the model's files are: the logged model's artifact URI, or `model` under the run's artifacts. */
  readonly artifactPath: string;
  /** The server's MLflow version, when it says. */
  readonly mlflowVersion: string | null;
  readonly onnxBytes: number;
  readonly created: Date;
}

/** Keys sorted, as MLflow's yaml.safe_dump writes them. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sorted((value as Record<string, unknown>)[k])]),
    );
  return value;
}

const yaml = (value: unknown) => stringify(sorted(value), { lineWidth: 0 });

/** The tensor signature MLflow infers from float32 arrays: images [-1, S, S, C] in, logits [-1, classes] out. */
export function signature(spec: Pick<MlflowModelSpec, 'imageSize' | 'channels' | 'classes'>): { inputs: string; outputs: string; params: null } {
  // Spaced as Python's json.dumps writes it (no string here holds a comma or a colon).
  const tensor = (shape: number[]) =>
    JSON.stringify([{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape } }])
      .replace(/,/g, ', ')
      .replace(/:/g, ': ');
  return { inputs: tensor([-1, spec.imageSize, spec.imageSize, spec.channels]), outputs: tensor([-1, spec.classes]), params: null };
}

/** The MLflow Model's files besides model.onnx, by name. */
export function mlflowModelFiles(spec: MlflowModelSpec, place: MlflowModelPlace): Record<string, string> {
  const requirements = [place.mlflowVersion ? `mlflow==${place.mlflowVersion}` : 'mlflow', ...ONNX_REQUIREMENTS];
  const env = {
    'requirements.txt': requirements.join('\n'),
    'conda.yaml': yaml({ channels: ['conda-forge'], dependencies: [`python=${spec.pythonVersion}`, 'pip', { pip: requirements }], name: 'mlflow-env' }),
    'python_env.yaml': stringify(
      { python: spec.pythonVersion, build_dependencies: ['pip', 'setuptools', 'wheel'], dependencies: ['-r requirements.txt'] },
      { lineWidth: 0 },
    ),
  };
  const size = place.onnxBytes + Object.values(env).reduce((n, text) => n + Buffer.byteLength(text), 0);
  const mlmodel = {
    artifact_path: place.artifactPath,
    flavors: {
      onnx: { code: null, data: ONNX_FILE, onnx_session_options: null, providers: ['CUDAExecutionProvider', 'CPUExecutionProvider'] },
      python_function: {
        data: ONNX_FILE,
        env: { conda: 'conda.yaml', virtualenv: 'python_env.yaml' },
        loader_module: 'mlflow.onnx',
        python_version: spec.pythonVersion,
      },
    },
    is_signature_from_type_hint: false,
    metadata: spec.metadata,
    ...(place.mlflowVersion ? { mlflow_version: place.mlflowVersion } : {}),
    model_id: place.modelId,
    model_size_bytes: size,
    model_uuid: place.modelId ?? randomUUID().replace(/-/g, ''),
    prompts: null,
    run_id: place.runId,
    signature: signature(spec),
    type_hint_from_example: false,
    utc_time_created: place.created.toISOString().replace('T', ' ').replace('Z', ''),
  };
  return { MLmodel: yaml(mlmodel), ...env };
}
