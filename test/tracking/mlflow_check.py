"""Reads an ssfer run back with MLflow's own Python client, as its users do (run with the project's .venv).

  mlflow_check.py JOB.json

JOB: {"uri": tracking URI, "experiment": name, "load": [{"run_id", "input": raw float32 file, "shape"}],
      "registered": name or null}
Prints JSON: every run of the experiment (name, tags, params, latest metrics, dataset inputs, model
outputs), the experiment's logged models (search_logged_models), for each load job what
mlflow.pyfunc.load_model("runs:/<run_id>/model") predicts (and its signature and metadata) and
whether mlflow.onnx.load_model reads the same model, and the registered model's versions.
"""
import json
import sys

import mlflow
import mlflow.onnx
import numpy as np
from mlflow import MlflowClient


def main(job_file):
    with open(job_file) as f:
        job = json.load(f)
    mlflow.set_tracking_uri(job["uri"])
    client = MlflowClient()
    exp = client.get_experiment_by_name(job["experiment"])
    runs = []
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        runs.append(
            {
                "run_id": r.info.run_id,
                "name": r.info.run_name,
                "status": r.info.status,
                "tags": r.data.tags,
                "params": r.data.params,
                "metrics": r.data.metrics,
                "inputs": [
                    {
                        "name": d.dataset.name,
                        "digest": d.dataset.digest,
                        "source_type": d.dataset.source_type,
                        "source": json.loads(d.dataset.source),
                        "profile": json.loads(d.dataset.profile) if d.dataset.profile else None,
                        "context": {t.key: t.value for t in d.tags}.get("mlflow.data.context"),
                    }
                    for d in (r.inputs.dataset_inputs if r.inputs else [])
                ],
                "outputs": [o.model_id for o in (r.outputs.model_outputs if r.outputs else [])],
            }
        )
    models = [
        {
            "model_id": m.model_id,
            "name": m.name,
            "source_run_id": m.source_run_id,
            "status": str(m.status),
            "metrics": [{"key": x.key, "value": x.value, "dataset_name": x.dataset_name, "dataset_digest": x.dataset_digest} for x in (m.metrics or [])],
        }
        for m in client.search_logged_models([exp.experiment_id])
    ]
    predictions = []
    for load in job.get("load", []):
        uri = f"runs:/{load['run_id']}/model"
        model = mlflow.pyfunc.load_model(uri)
        x = np.fromfile(load["input"], dtype=np.float32).reshape(load["shape"])
        out = model.predict(x)
        native = mlflow.onnx.load_model(uri)
        predictions.append(
            {
                "run_id": load["run_id"],
                "logits": np.asarray(out["logits"]).tolist(),
                "inputs": [list(s.shape) for s in model.metadata.get_input_schema().inputs],
                "outputs": [list(s.shape) for s in model.metadata.get_output_schema().inputs],
                "metadata": model.metadata.metadata,
                "flavors": sorted(model.metadata.flavors),
                "onnx_inputs": [i.name for i in native.graph.input],
            }
        )
    versions = []
    if job.get("registered"):
        for v in client.search_model_versions(f"name = '{job['registered']}'"):
            versions.append({"version": v.version, "run_id": v.run_id, "source": v.source, "description": v.description})
        if versions:
            m = mlflow.pyfunc.load_model(f"models:/{job['registered']}/{versions[0]['version']}")
            versions[0]["loads"] = sorted(m.metadata.flavors)
    json.dump({"runs": runs, "logged_models": models, "predictions": predictions, "versions": versions}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
