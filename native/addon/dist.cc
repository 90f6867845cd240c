// Bindings: communicators for data-parallel training (lib/dist). A communicator is an integer handle.
//   cpu.distShmOpen(name, rank, world, chunkBytes, timeoutS) -> handle   (rank 0 creates the segment)
//   cpu.distShmUnlink(name)
//   cpu.distTcpListen(host) -> {fd, port};  cpu.distTcpConnect(rank, world, fd, nextHost, nextPort, timeoutS) -> handle
//   cpu.distAllReduce(handle, addresses[], bytes[], dtype 0=f32 1=f64, scale)   in place over the buffers taken
//                                                     as one: scale * sum over ranks (one collective)
//   cpu.distAllReduceStart(handle, addresses[], bytes[], dtype, scale)   the same, on the communicator's
//                                                     background thread; cpu.distWait(handle) waits for all started
//   cpu.distBroadcast(handle, address, bytes, root)
//   cpu.distSetTimeout(handle, seconds); cpu.distAbort(handle); cpu.distClose(handle)
// With the CUDA backend compiled, NCCL (native/cuda/nccl.h) on the cuda object:
//   cuda.ncclUnavailableReason() -> '' or why; cuda.ncclVersion(); cuda.ncclUniqueId() -> Buffer(128)
//   cuda.ncclInit(rank, world, idBuffer, device) -> handle; cuda.ncclAllReduce(handle, address, count, dtype 0=f32
//   1=bf16, average); cuda.ncclAllReduceStart(handle, addresses[], counts[], dtype, average) on the
//   communicator's own stream, cuda.ncclWait(handle); cuda.ncclBroadcast(handle, address, bytes, root);
//   cuda.ncclClose(handle, abort)
// Collectives block the calling thread, except the ...Start ones, which overlap the backward pass until the
// matching wait; a blocking collective first waits for the started ones, so every rank keeps one order.
// Failures throw JS errors with the reason.
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "binding.h"
#include "shm.h"
#include "tcp_ring.h"
#ifdef MINIMIND_WITH_CUDA
#include "cuda/nccl.h"
#endif

namespace {

using mm::dist::Communicator;

// A communicator and the background thread of its started collectives (declared after it, so destroyed first).
struct Entry {
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<mm::dist::CollectiveQueue> queue = std::make_unique<mm::dist::CollectiveQueue>();
};

std::mutex registry_mutex;
std::map<int, Entry> communicators;
int next_handle = 1;

int keep(std::unique_ptr<Communicator> c) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  communicators[next_handle].comm = std::move(c);
  return next_handle++;
}

Entry& entry(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = communicators.find(mm::i32(info, 0));
  if (it == communicators.end()) throw Napi::Error::New(info.Env(), "dist: communicator is closed");
  return it->second;
}

// The communicator for a blocking collective, once the started ones have finished.
Communicator& idle(const Napi::CallbackInfo& info) {
  Entry& e = entry(info);
  e.queue->wait();
  return *e.comm;
}

std::vector<mm::dist::Segment> segments_of(const Napi::CallbackInfo& info) {
  Napi::Array addresses = info[1].As<Napi::Array>(), bytes = info[2].As<Napi::Array>();
  std::vector<mm::dist::Segment> segments(addresses.Length());
  for (uint32_t i = 0; i < addresses.Length(); ++i) {
    segments[i] = {reinterpret_cast<void*>(static_cast<uintptr_t>(addresses.Get(i).As<Napi::Number>().Int64Value())),
                   bytes.Get(i).As<Napi::Number>().Int64Value()};
  }
  return segments;
}

// Runs `fn`, turning C++ exceptions into JS errors.
template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Value ShmOpen(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    auto c = std::make_unique<mm::dist::ShmCommunicator>(info[0].As<Napi::String>().Utf8Value(), mm::i32(info, 1),
                                                         mm::i32(info, 2), mm::i64(info, 3), mm::num(info, 4));
    return Napi::Number::New(info.Env(), keep(std::move(c)));
  });
}

Napi::Value ShmUnlink(const Napi::CallbackInfo& info) {
  mm::dist::ShmCommunicator::unlink(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

Napi::Value TcpListen(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    mm::dist::ListeningSocket s = mm::dist::TcpRingCommunicator::listen_any(info[0].As<Napi::String>().Utf8Value());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("fd", s.fd);
    o.Set("port", s.port);
    return o;
  });
}

Napi::Value TcpConnect(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    auto c = std::make_unique<mm::dist::TcpRingCommunicator>(
        mm::i32(info, 0), mm::i32(info, 1), mm::dist::ListeningSocket{mm::i32(info, 2), 0},
        info[3].As<Napi::String>().Utf8Value(), mm::i32(info, 4), mm::num(info, 5));
    return Napi::Number::New(info.Env(), keep(std::move(c)));
  });
}

Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    idle(info).all_reduce(segments_of(info), static_cast<mm::dist::DType>(mm::i32(info, 3)), mm::num(info, 4));
    return info.Env().Undefined();
  });
}

Napi::Value AllReduceStart(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    Entry& e = entry(info);
    Communicator* comm = e.comm.get();
    auto dtype = static_cast<mm::dist::DType>(mm::i32(info, 3));
    double scale = mm::num(info, 4);
    e.queue->start([comm, segments = segments_of(info), dtype, scale] { comm->all_reduce(segments, dtype, scale); });
    return info.Env().Undefined();
  });
}

Napi::Value Wait(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    entry(info).queue->wait();
    return info.Env().Undefined();
  });
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    idle(info).broadcast(mm::ptr<void>(info, 1), mm::i64(info, 2), mm::i32(info, 3));
    return info.Env().Undefined();
  });
}

Napi::Value SetTimeout(const Napi::CallbackInfo& info) {
  entry(info).comm->set_timeout(mm::num(info, 1));
  return info.Env().Undefined();
}

// Safe while a started collective runs on the background thread: it makes that one fail too.
Napi::Value Abort(const Napi::CallbackInfo& info) {
  entry(info).comm->abort();
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  communicators.erase(mm::i32(info, 0));
  return info.Env().Undefined();
}

#ifdef MINIMIND_WITH_CUDA
namespace nccl = mm::cuda::nccl;

Napi::Value NcclUnavailableReason(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), nccl::unavailable_reason());
}

Napi::Value NcclVersion(const Napi::CallbackInfo& info) {
  return guarded(info, [&] { return Napi::Number::New(info.Env(), nccl::version()); });
}

Napi::Value NcclUniqueId(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string id = nccl::unique_id();
    return Napi::Buffer<char>::Copy(info.Env(), id.data(), id.size());
  });
}

Napi::Value NcclInit(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    Napi::Buffer<char> id = info[2].As<Napi::Buffer<char>>();
    int h = nccl::init_rank(mm::i32(info, 0), mm::i32(info, 1), std::string(id.Data(), id.Length()), mm::i32(info, 3));
    return Napi::Number::New(info.Env(), h);
  });
}

Napi::Value NcclAllReduce(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    nccl::all_reduce(mm::i32(info, 0), mm::ptr<void>(info, 1), mm::i64(info, 2), mm::i32(info, 3), mm::flag(info, 4));
    return info.Env().Undefined();
  });
}

Napi::Value NcclAllReduceStart(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    Napi::Array addresses = info[1].As<Napi::Array>(), counts = info[2].As<Napi::Array>();
    std::vector<void*> data(addresses.Length());
    std::vector<int64_t> sizes(addresses.Length());
    for (uint32_t i = 0; i < addresses.Length(); ++i) {
      data[i] = reinterpret_cast<void*>(static_cast<uintptr_t>(addresses.Get(i).As<Napi::Number>().Int64Value()));
      sizes[i] = counts.Get(i).As<Napi::Number>().Int64Value();
    }
    nccl::all_reduce_start(mm::i32(info, 0), data, sizes, mm::i32(info, 3), mm::flag(info, 4));
    return info.Env().Undefined();
  });
}

Napi::Value NcclWait(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    nccl::wait(mm::i32(info, 0));
    return info.Env().Undefined();
  });
}

Napi::Value NcclBroadcast(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    nccl::broadcast(mm::i32(info, 0), mm::ptr<void>(info, 1), mm::i64(info, 2), mm::i32(info, 3));
    return info.Env().Undefined();
  });
}

Napi::Value NcclClose(const Napi::CallbackInfo& info) {
  return guarded(info, [&] {
    nccl::destroy(mm::i32(info, 0), mm::flag(info, 1));
    return info.Env().Undefined();
  });
}
#endif

}  // namespace

MM_BINDINGS(dist) {
  mm::def(env, cpu, "distShmOpen", ShmOpen);
  mm::def(env, cpu, "distShmUnlink", ShmUnlink);
  mm::def(env, cpu, "distTcpListen", TcpListen);
  mm::def(env, cpu, "distTcpConnect", TcpConnect);
  mm::def(env, cpu, "distAllReduce", AllReduce);
  mm::def(env, cpu, "distAllReduceStart", AllReduceStart);
  mm::def(env, cpu, "distWait", Wait);
  mm::def(env, cpu, "distBroadcast", Broadcast);
  mm::def(env, cpu, "distSetTimeout", SetTimeout);
  mm::def(env, cpu, "distAbort", Abort);
  mm::def(env, cpu, "distClose", Close);
#ifdef MINIMIND_WITH_CUDA
  mm::def(env, cuda, "ncclUnavailableReason", NcclUnavailableReason);
  mm::def(env, cuda, "ncclVersion", NcclVersion);
  mm::def(env, cuda, "ncclUniqueId", NcclUniqueId);
  mm::def(env, cuda, "ncclInit", NcclInit);
  mm::def(env, cuda, "ncclAllReduce", NcclAllReduce);
  mm::def(env, cuda, "ncclAllReduceStart", NcclAllReduceStart);
  mm::def(env, cuda, "ncclWait", NcclWait);
  mm::def(env, cuda, "ncclBroadcast", NcclBroadcast);
  mm::def(env, cuda, "ncclClose", NcclClose);
#endif
}
