// The TCP ring transport (see tcp_ring.h).
#include "tcp_ring.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace mm::dist {

namespace {

std::string errno_text() { return std::strerror(errno); }

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Blocking-with-deadline helpers for the 4-byte handshake on a non-blocking socket.
void send_all(int fd, const void* buf, size_t n, const Deadline& deadline, const std::string& what) {
  const uint8_t* p = static_cast<const uint8_t*>(buf);
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) throw CommError(what + ": " + errno_text());
    if (deadline.expired()) throw CommError(what + ": timed out");
    pollfd pfd{fd, POLLOUT, 0};
    poll(&pfd, 1, deadline.remaining_ms(100));
  }
}

void recv_all(int fd, void* buf, size_t n, const Deadline& deadline, const std::string& what) {
  uint8_t* p = static_cast<uint8_t*>(buf);
  while (n) {
    ssize_t k = recv(fd, p, n, 0);
    if (k > 0) {
      p += k;
      n -= static_cast<size_t>(k);
      continue;
    }
    if (k == 0) throw CommError(what + ": connection closed");
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) throw CommError(what + ": " + errno_text());
    if (deadline.expired()) throw CommError(what + ": timed out");
    pollfd pfd{fd, POLLIN, 0};
    poll(&pfd, 1, deadline.remaining_ms(100));
  }
}

// Connects to host:port, retrying while the peer is not listening yet, until the deadline.
int connect_with_retry(const std::string& host, int port, const Deadline& deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(port);
  int gai = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (gai) throw CommError("tcp: cannot resolve " + host + ": " + gai_strerror(gai));
  std::string last_error = "timed out";
  for (;;) {
    for (addrinfo* a = res; a; a = a->ai_next) {
      int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0) continue;
      if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        freeaddrinfo(res);
        return fd;
      }
      last_error = errno_text();
      close(fd);
    }
    if (deadline.expired()) {
      freeaddrinfo(res);
      throw CommError("tcp: cannot connect to " + host + ":" + port_text + ": " + last_error);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

ListeningSocket TcpRingCommunicator::listen_any(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), "0", &hints, &res);
  if (gai) throw CommError("tcp: cannot resolve " + host + ": " + gai_strerror(gai));
  int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 8)) {
    std::string err = errno_text();
    freeaddrinfo(res);
    if (fd >= 0) close(fd);
    throw CommError("tcp: cannot listen on " + host + ": " + err);
  }
  freeaddrinfo(res);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return {fd, port};
}

TcpRingCommunicator::TcpRingCommunicator(int rank, int world, ListeningSocket listener, const std::string& next_host,
                                         int next_port, double timeout_s)
    : Communicator(rank, world, timeout_s) {
  const Deadline deadline(timeout_s);
  const int next = (rank + 1) % world, prev = (rank + world - 1) % world;
  try {
    // Connecting first is safe: every listener exists before any address is published, and the kernel
    // completes the handshake from its backlog before the peer calls accept().
    next_fd_ = connect_with_retry(next_host, next_port, deadline);
    set_nonblocking(next_fd_);
    set_nodelay(next_fd_);
    const int32_t me = rank;
    send_all(next_fd_, &me, sizeof me, deadline, "tcp: hello to rank " + std::to_string(next));
    set_nonblocking(listener.fd);
    for (;;) {
      pollfd pfd{listener.fd, POLLIN, 0};
      if (poll(&pfd, 1, deadline.remaining_ms(100)) > 0) {
        prev_fd_ = accept(listener.fd, nullptr, nullptr);
        if (prev_fd_ >= 0) break;
      }
      if (deadline.expired()) throw CommError("tcp: rank " + std::to_string(prev) + " did not connect in time");
    }
    set_nonblocking(prev_fd_);
    set_nodelay(prev_fd_);
    int32_t who = -1;
    recv_all(prev_fd_, &who, sizeof who, deadline, "tcp: hello from rank " + std::to_string(prev));
    if (who != prev) throw CommError("tcp: expected rank " + std::to_string(prev) + " to connect, got rank " + std::to_string(who));
  } catch (...) {
    close(listener.fd);
    if (next_fd_ >= 0) close(next_fd_);
    if (prev_fd_ >= 0) close(prev_fd_);
    throw;
  }
  close(listener.fd);
}

TcpRingCommunicator::~TcpRingCommunicator() {
  if (next_fd_ >= 0) close(next_fd_);
  if (prev_fd_ >= 0) close(prev_fd_);
}

void TcpRingCommunicator::abort() noexcept {
  // Closing our ends makes both neighbours' next send or receive fail, and they abort in turn.
  if (next_fd_ >= 0) shutdown(next_fd_, SHUT_RDWR);
  if (prev_fd_ >= 0) shutdown(prev_fd_, SHUT_RDWR);
}

void TcpRingCommunicator::exchange(const void* send_buf, size_t send_bytes, void* recv_buf, size_t recv_bytes,
                                   const Deadline& deadline, const char* what) {
  const int next = (rank_ + 1) % world_, prev = (rank_ + world_ - 1) % world_;
  const uint8_t* s = static_cast<const uint8_t*>(send_buf);
  uint8_t* r = static_cast<uint8_t*>(recv_buf);
  size_t sent = 0, received = 0;
  auto fail = [&](const std::string& why) {
    abort();
    throw CommError(std::string(what) + ": " + why);
  };
  while (sent < send_bytes || received < recv_bytes) {
    pollfd fds[2];
    int n = 0, send_at = -1, recv_at = -1;
    if (sent < send_bytes) {
      send_at = n;
      fds[n++] = {next_fd_, POLLOUT, 0};
    }
    if (received < recv_bytes) {
      recv_at = n;
      fds[n++] = {prev_fd_, POLLIN, 0};
    }
    if (deadline.expired()) {
      fail("timed out (MINIMIND_DIST_TIMEOUT=" + std::to_string(timeout_s_) + " s) waiting for rank " +
           std::to_string(received < recv_bytes ? prev : next));
    }
    if (poll(fds, n, deadline.remaining_ms(1000)) <= 0) continue;
    if (send_at >= 0 && fds[send_at].revents) {
      ssize_t k = send(next_fd_, s + sent, send_bytes - sent, MSG_NOSIGNAL);
      if (k > 0) sent += static_cast<size_t>(k);
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        fail("sending to rank " + std::to_string(next) + " failed (" + errno_text() + "): did it exit?");
    }
    if (recv_at >= 0 && fds[recv_at].revents) {
      ssize_t k = recv(prev_fd_, r + received, recv_bytes - received, 0);
      if (k > 0) received += static_cast<size_t>(k);
      else if (k == 0) fail("rank " + std::to_string(prev) + " closed the connection: did it exit?");
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        fail("receiving from rank " + std::to_string(prev) + " failed (" + errno_text() + ")");
    }
  }
}

template <typename T>
void TcpRingCommunicator::all_reduce_typed(T* data, int64_t count, T scale) {
  const Deadline deadline(timeout_s_);
  const int W = world_;
  auto seg_begin = [&](int k) { return count * ((k % W + W) % W) / W; };
  auto seg_size = [&](int k) { return count * (((k % W + W) % W) + 1) / W - seg_begin(k); };
  scratch_.resize(static_cast<size_t>((count + W - 1) / W) * sizeof(T));
  T* incoming = reinterpret_cast<T*>(scratch_.data());
  // Reduce-scatter: at step s, send segment rank-s, receive segment rank-s-1 and add our values to it.
  for (int s = 0; s < W - 1; ++s) {
    const int out = rank_ - s, in = rank_ - s - 1;
    exchange(data + seg_begin(out), seg_size(out) * sizeof(T), incoming, seg_size(in) * sizeof(T), deadline,
             "all_reduce");
    T* mine = data + seg_begin(in);
    for (int64_t i = 0, n = seg_size(in); i < n; ++i) mine[i] = incoming[i] + mine[i];
  }
  // Segment rank+1 is now complete here.
  if (scale != T(1)) {
    T* done = data + seg_begin(rank_ + 1);
    for (int64_t i = 0, n = seg_size(rank_ + 1); i < n; ++i) done[i] *= scale;
  }
  // All-gather: at step s, pass on segment rank+1-s, receive segment rank-s in place.
  for (int s = 0; s < W - 1; ++s) {
    const int out = rank_ + 1 - s, in = rank_ - s;
    exchange(data + seg_begin(out), seg_size(out) * sizeof(T), data + seg_begin(in), seg_size(in) * sizeof(T),
             deadline, "all_reduce");
  }
}

void TcpRingCommunicator::all_reduce(const std::vector<Segment>& segments, DType dtype, double scale) {
  if (world_ == 1) return;
  int64_t bytes = 0;
  for (const Segment& s : segments) bytes += s.bytes;
  void* data = segments.size() == 1 ? segments[0].data : nullptr;
  if (!data) {
    flat_.resize(static_cast<size_t>(bytes));
    uint8_t* to = flat_.data();
    SegmentWalker(segments).take(bytes, [&](uint8_t* p, int64_t n) {
      std::memcpy(to, p, n);
      to += n;
    });
    data = flat_.data();
  }
  const int64_t count = bytes / static_cast<int64_t>(dtype_bytes(dtype));
  if (dtype == DType::f64) all_reduce_typed(static_cast<double*>(data), count, scale);
  else all_reduce_typed(static_cast<float*>(data), count, static_cast<float>(scale));
  if (data == flat_.data()) {
    const uint8_t* from = flat_.data();
    SegmentWalker(segments).take(bytes, [&](uint8_t* p, int64_t n) {
      std::memcpy(p, from, n);
      from += n;
    });
  }
}

void TcpRingCommunicator::broadcast(void* data, int64_t bytes, int root) {
  if (world_ == 1) return;
  // A pipeline along the ring from the root, in pieces so every hop works at once.
  const Deadline deadline(timeout_s_);
  constexpr int64_t kPiece = 1 << 20;
  const bool forwards = (rank_ + 1) % world_ != root;
  uint8_t* p = static_cast<uint8_t*>(data);
  for (int64_t off = 0; off < bytes; off += kPiece) {
    const size_t n = static_cast<size_t>(std::min(kPiece, bytes - off));
    if (rank_ != root) exchange(nullptr, 0, p + off, n, deadline, "broadcast");
    if (forwards) exchange(p + off, n, nullptr, 0, deadline, "broadcast");
  }
}

}  // namespace mm::dist
