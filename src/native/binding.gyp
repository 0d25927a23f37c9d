{
  "variables": {
    "ssfer_simd%": "0"
  },
  "targets": [
    {
      "target_name": "ssfer_native",
      "sources": [
        "csrc/addon.cc",
        "csrc/gemm.cc",
        "csrc/elementwise.cc",
        "csrc/reduce.cc",
        "csrc/layout.cc",
        "csrc/optim.cc",
        "csrc/layers.cc",
        "csrc/block.cc",
        "csrc/conv.cc",
        "csrc/image.cc",
        "csrc/threadpool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0"],
      "cflags": ["-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"],
      "libraries": ["-lopenblas"],
      "conditions": [
        ["ssfer_simd==1", {
          "cflags": ["-mavx2", "-mfma"],
          "cflags_cc": ["-mavx2", "-mfma"]
        }],
        ["ssfer_simd==2", {
          "cflags": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mprefer-vector-width=512"],
          "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mprefer-vector-width=512"]
        }]
      ]
    }
  ]
}
