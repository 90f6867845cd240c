// The shared-memory transport: ranks on one host all-reduce through one POSIX shared-memory segment.
//
// Layout of the segment (created by rank 0, opened by the others, unlinked by rank 0 once all have it open,
// so nothing is left in /dev/shm even if every process is killed):
//   header (one page): magic, world, chunk size, a barrier (arrival count + generation), the rank that
//   aborted (or -1), every rank's pid;
//   data: two sets ("phases") of `world` slots of chunk_bytes each. Consecutive chunk operations alternate
//   phases, so a rank may fill the next slot while a slower rank still reads the previous result.
// all_reduce, per chunk of at most chunk_bytes of the concatenated segments: each rank copies its chunk (gathered
// from its segments) into its slot; barrier; rank r sums
// part r of the chunk over the slots in rank order 0, 1, ..., world-1 (the fixed order that makes the result
// bit-identical everywhere) and writes it to slot 0; barrier; every rank copies slot 0 out to its segments.
// Waits spin briefly, then sleep on a futex (Linux) or poll, checking the deadline, the abort flag and whether
// every peer's pid is still alive.
#pragma once
#include <string>

#include "comm.h"

namespace mm::dist {

struct ShmHeader;

class ShmCommunicator final : public Communicator {
 public:
  // Rank 0 creates the segment `name` (e.g. "/minimind-1a2b3c"); the others open it after rank 0 published
  // the name. chunk_bytes bounds the segment to 2 * world * chunk_bytes (+ one page).
  ShmCommunicator(const std::string& name, int rank, int world, int64_t chunk_bytes, double timeout_s);
  ~ShmCommunicator() override;

  // Removes the name from /dev/shm (the mapping stays valid). Rank 0 calls it once everyone has opened it.
  static void unlink(const std::string& name);

  void all_reduce(const std::vector<Segment>& segments, DType dtype, double scale) override;
  void broadcast(void* data, int64_t bytes, int root) override;
  void abort() noexcept override;

 private:
  void barrier(const Deadline& deadline, const char* what);
  uint8_t* slot(int phase, int r) const;
  template <typename T>
  void all_reduce_typed(const std::vector<Segment>& segments, T scale);

  std::string name_;
  int64_t chunk_bytes_;
  size_t map_bytes_ = 0;
  void* map_ = nullptr;
  ShmHeader* header_ = nullptr;
  uint8_t* data_ = nullptr;
  uint64_t phase_ = 0;  // chunk operations done: selects the slot set (phase_ % 2)
};

}  // namespace mm::dist
