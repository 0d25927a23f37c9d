import { definePlugin } from '../../src/core/plugin.ts';

export default definePlugin({
  kind: 'face-boxes',
  name: 'onnx',
  description: 'face boxes from an ONNX face detector run with onnxruntime-node (the paper: YOLOv7-face)',
  status: 'planned',
  plannedReason: 'the ONNX detector arrives with the real-dataset work; use annotations meanwhile',
  options: {
    type: 'object',
    required: ['model'],
    properties: {
      model: { type: 'string', description: 'path of the .onnx detector, relative to the recipe' },
      input_size: { type: 'integer', minimum: 32, default: 224, description: 'detector input size in pixels' },
      confidence: { type: 'number', minimum: 0, maximum: 1, default: 0.4, description: 'minimum detection score' },
      nms_iou: { type: 'number', minimum: 0, maximum: 1, default: 0.5, description: 'non-maximum suppression IoU' },
      fallback: {
        type: 'array',
        items: { type: 'number' },
        minItems: 4,
        maxItems: 4,
        default: [25, 25, 220, 220],
        description: 'box used when the detector does not find exactly one face (at 224 px, scaled to the image)',
      },
    },
  },
  create: () => {
    throw new Error('unreachable: planned plugin');
  },
});
