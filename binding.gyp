{
  # CPU-only fallback build for hosts without cmake. The source list comes from the same
  # directories that CMakeLists.txt globs (scripts/native-sources.js).
  "targets": [
    {
      "target_name": "minimind",
      "sources": [ "<!@(node scripts/native-sources.js cpu)" ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "native/cpu",
        "native"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": [ "NAPI_VERSION=8", "MINIMIND_BUILD_BACKEND=\"node-gyp\"" ],
      "cflags_cc": [ "-fvisibility=hidden", "-O3", "-std=c++17", "-fno-math-errno" ],
      "libraries": [ "-ldl", "-lpthread" ]
    }
  ]
}
