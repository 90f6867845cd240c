// Binding: measurePeak(bandwidthBytes) -> {gflopsPortable, gflopsAvx2, gflopsAvx512, bandwidthGbps}.
#include "binding.h"
#include "peak.h"

namespace {

Napi::Value MeasurePeak(const Napi::CallbackInfo& info) {
  mm::cpu::PeakInfo p = mm::cpu::measure_peak(info.Length() > 0 ? mm::i64(info, 0) : (int64_t(768) << 20));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("gflopsPortable", p.gflops_portable);
  o.Set("gflopsAvx2", p.gflops_avx2);
  o.Set("gflopsAvx512", p.gflops_avx512);
  o.Set("bandwidthGbps", p.bandwidth_gbps);
  return o;
}

}  // namespace

MM_BINDINGS(peak) { mm::def(env, cpu, "measurePeak", MeasurePeak); }
