// The TCP transport: ranks on any hosts all-reduce around a ring of TCP connections (rank r sends to
// r+1 mod world and receives from r-1 mod world).
//
// Setup, in two steps because addresses travel through the rendezvous store in between:
//   listen_any(host) opens a listening socket on an ephemeral port (every rank, before publishing host:port);
//   the constructor connects to the next rank's address and accepts the previous rank's connection.
// all_reduce is the bandwidth-optimal ring: the buffer is cut into `world` segments; world-1 reduce-scatter
// steps (send a segment to the next rank, add the one received from the previous rank) leave each rank with
// one fully summed segment; world-1 all-gather steps pass the finished segments around. Each element's sum is
// computed once, by one rank, and copied to the others, so every rank ends with the same bits. Several buffers
// are gathered into one contiguous buffer first (the ring cuts it into world parts).
// A closed connection (the peer exited) or the deadline ends any wait with CommError.
#pragma once
#include <string>
#include <vector>

#include "comm.h"

namespace mm::dist {

struct ListeningSocket {
  int fd;
  int port;
};

class TcpRingCommunicator final : public Communicator {
 public:
  static ListeningSocket listen_any(const std::string& host);

  // Takes ownership of `listener` (closed once the previous rank has connected).
  TcpRingCommunicator(int rank, int world, ListeningSocket listener, const std::string& next_host, int next_port,
                      double timeout_s);
  ~TcpRingCommunicator() override;

  void all_reduce(const std::vector<Segment>& segments, DType dtype, double scale) override;
  void broadcast(void* data, int64_t bytes, int root) override;
  void abort() noexcept override;

 private:
  // Sends `send_bytes` to the next rank while receiving `recv_bytes` from the previous one.
  void exchange(const void* send, size_t send_bytes, void* recv, size_t recv_bytes, const Deadline& deadline,
                const char* what);
  template <typename T>
  void all_reduce_typed(T* data, int64_t count, T scale);

  int next_fd_ = -1, prev_fd_ = -1;
  std::vector<uint8_t> scratch_;  // one received ring segment
  std::vector<uint8_t> flat_;     // several buffers gathered into one
};

}  // namespace mm::dist
