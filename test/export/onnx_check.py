"""Reads ONNX files the way their users do, for the export tests (run with the project's .venv).

  onnx_check.py describe MODEL.onnx…  each model as the onnx package parses it, as a JSON list
  onnx_check.py run JOB.json          for each {model, input, shape}: onnx.checker (full check,
                                      with shape inference), onnxruntime's output and the onnx
                                      reference evaluator's output on the raw float32 input file,
                                      and the model's metadata, as JSON
"""
import json
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, (list, tuple)):
        return [value(x) for x in v]
    return v


def shape_of(info):
    dims = info.type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]


def describe(path):
    m = onnx.load(path)
    g = m.graph
    return {
        "ir_version": m.ir_version,
        "opset": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
        "producer": [m.producer_name, m.producer_version],
        "model_version": m.model_version,
        "doc": m.doc_string,
        "metadata": {p.key: p.value for p in m.metadata_props},
        "graph": g.name,
        "nodes": [
            {
                "op": n.op_type,
                "name": n.name,
                "inputs": list(n.input),
                "outputs": list(n.output),
                "attributes": {a.name: value(helper.get_attribute_value(a)) for a in n.attribute},
            }
            for n in g.node
        ],
        "initializers": [
            {"name": t.name, "dims": list(t.dims), "type": onnx.TensorProto.DataType.Name(t.data_type), "values": numpy_helper.to_array(t).ravel().tolist()}
            for t in g.initializer
        ],
        "inputs": [{"name": i.name, "shape": shape_of(i), "doc": i.doc_string} for i in g.input],
        "outputs": [{"name": o.name, "shape": shape_of(o), "doc": o.doc_string} for o in g.output],
    }


def run(job_file):
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    results = []
    for job in json.load(open(job_file)):
        model = onnx.load(job["model"])
        onnx.checker.check_model(model, full_check=True)
        x = np.fromfile(job["input"], dtype="<f4").reshape(job["shape"])
        session = ort.InferenceSession(job["model"], providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        out = session.run(None, {name: x})[0]
        reference = ReferenceEvaluator(model).run(None, {name: x})[0]
        meta = session.get_modelmeta()
        results.append(
            {
                "model": job["model"],
                "inputs": [[i.name, i.shape, i.type] for i in session.get_inputs()],
                "outputs": [[o.name, o.shape, o.type] for o in session.get_outputs()],
                "onnxruntime": out.astype(np.float64).ravel().tolist(),
                "reference": reference.astype(np.float64).ravel().tolist(),
                "metadata": dict(meta.custom_metadata_map),
                "producer": meta.producer_name,
                "onnxruntime_version": ort.__version__,
            }
        )
    return results


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    print(json.dumps([describe(a) for a in args] if command == "describe" else run(args[0])))
