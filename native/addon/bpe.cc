// Bindings: BPE training (see native/cpu/bpe.h). Typed arrays in, an Int32Array of (left, right, merged) out.
//   bpeTrain(symbols: Int32Array, offsets: Float64Array (n_words + 1), counts: Float64Array (n_words),
//            firstByteId: number, byteOf: Uint8Array (256), vocabSize: number, onProgress?: (merges) => void)
// It runs synchronously; onProgress is called on this thread every ~0.5% of the merges.
#include <vector>

#include "binding.h"
#include "bpe.h"

namespace {

Napi::Value BpeTrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto symbols = info[0].As<Napi::Int32Array>();
  auto offsets_f = info[1].As<Napi::Float64Array>();
  auto counts = info[2].As<Napi::Float64Array>();
  const int32_t first_byte_id = mm::i32(info, 3);
  auto byte_of = info[4].As<Napi::Uint8Array>();
  const int32_t vocab_size = mm::i32(info, 5);
  const int64_t n_words = static_cast<int64_t>(counts.ElementLength());
  if (offsets_f.ElementLength() != static_cast<size_t>(n_words + 1) || byte_of.ElementLength() != 256) {
    Napi::TypeError::New(env, "bpeTrain: offsets needs n_words + 1 entries and byteOf 256").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<int64_t> offsets(n_words + 1);
  const double* offsets_data = offsets_f.Data();
  for (int64_t i = 0; i <= n_words; i++) offsets[i] = static_cast<int64_t>(offsets_data[i]);
  Napi::Function on_progress = info.Length() > 6 && info[6].IsFunction() ? info[6].As<Napi::Function>() : Napi::Function();
  auto progress = [&](int32_t done) {
    if (!on_progress.IsEmpty()) on_progress.Call({Napi::Number::New(env, done)});
  };
  std::vector<mm::cpu::BpeMerge> merges = mm::cpu::bpe_train(symbols.Data(), offsets.data(), counts.Data(), n_words,
                                                             first_byte_id, byte_of.Data(), vocab_size, progress);
  auto out = Napi::Int32Array::New(env, merges.size() * 3);
  int32_t* triples = out.Data();
  for (size_t i = 0; i < merges.size(); i++) {
    triples[3 * i] = merges[i].left;
    triples[3 * i + 1] = merges[i].right;
    triples[3 * i + 2] = merges[i].merged;
  }
  return out;
}

}  // namespace

MM_BINDINGS(bpe) { mm::def(env, cpu, "bpeTrain", BpeTrain); }
