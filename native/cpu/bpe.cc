// BPE training with incremental pair counts (see bpe.h for the contract).
//
// State: every distinct word as a mutable symbol sequence with its count; for every adjacent pair its total count
// (sum over words of occurrences x word count) and the list of words it occurs in (may hold duplicates and words
// that no longer contain it: they are re-checked when used). A lazy max-heap orders pairs by (count desc, pair asc);
// an entry whose count is out of date is re-pushed with the current count when popped. Merging pair (a, b) only
// visits the words listed for it, rewrites their occurrences left to right, and adjusts the counts of the
// neighbouring pairs that disappear (x,a), (b,y) and appear (x,ab), (ab,y). The total work is proportional to the
// symbols that actually change, not to the corpus size times the number of merges.
#include "bpe.h"

#include <algorithm>
#include <queue>
#include <string>
#include <unordered_map>

namespace mm::cpu {
namespace {

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

struct HeapEntry {
  double count;
  uint64_t key;
  // std::priority_queue pops the largest: larger count first, then the smaller key.
  bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : key > o.key; }
};

struct PairStats {
  double count = 0;
  std::vector<int32_t> words;
  int32_t grown_at = -1;  // the merge step that last raised the count (so it is queued once per step)
};

// Pair key → PairStats, open addressing with linear probing over flat arrays (std::unordered_map's node per
// entry made the count updates, four per rewritten occurrence, the bottleneck). Entries are never removed: a
// merged pair keeps its slot with count 0, which the merge loop skips.
class PairMap {
 public:
  PairMap() : keys_(1 << 16, kEmpty), slots_(1 << 16, -1) {}

  PairStats& operator[](uint64_t key) {
    size_t i = probe(key);
    if (keys_[i] == key) return stats_[slots_[i]];
    if ((stats_.size() + 1) * 2 > keys_.size()) {
      grow();
      i = probe(key);
    }
    keys_[i] = key;
    slots_[i] = static_cast<int32_t>(stats_.size());
    stats_.emplace_back();
    return stats_.back();
  }

  PairStats* find(uint64_t key) {
    const size_t i = probe(key);
    return keys_[i] == key ? &stats_[slots_[i]] : nullptr;
  }

  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i < keys_.size(); i++)
      if (keys_[i] != kEmpty) f(keys_[i], stats_[slots_[i]]);
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  std::vector<uint64_t> keys_;
  std::vector<int32_t> slots_;
  std::vector<PairStats> stats_;

  size_t probe(uint64_t key) const {
    const size_t mask = keys_.size() - 1;
    size_t i = static_cast<size_t>((key * 0x9e3779b97f4a7c15ull) >> 20) & mask;
    while (keys_[i] != kEmpty && keys_[i] != key) i = (i + 1) & mask;
    return i;
  }

  void grow() {
    std::vector<uint64_t> old_keys(keys_.size() * 2, kEmpty);
    std::vector<int32_t> old_slots(keys_.size() * 2, -1);
    old_keys.swap(keys_);
    old_slots.swap(slots_);
    for (size_t j = 0; j < old_keys.size(); j++) {
      if (old_keys[j] == kEmpty) continue;
      const size_t i = probe(old_keys[j]);
      keys_[i] = old_keys[j];
      slots_[i] = old_slots[j];
    }
  }
};

}  // namespace

std::vector<BpeMerge> bpe_train(const int32_t* symbols, const int64_t* offsets, const double* counts, int64_t n_words,
                                int32_t first_byte_id, const uint8_t* byte_of, int32_t vocab_size,
                                const std::function<void(int32_t)>& progress) {
  // Token byte strings, to find merges that spell an existing token.
  std::vector<std::string> token_bytes(first_byte_id + 256);
  std::unordered_map<std::string, int32_t> token_id;
  for (int i = 0; i < 256; i++) {
    token_bytes[first_byte_id + i] = std::string(1, static_cast<char>(byte_of[i]));
    token_id.emplace(token_bytes[first_byte_id + i], first_byte_id + i);
  }

  std::vector<std::vector<int32_t>> words(n_words);
  for (int64_t w = 0; w < n_words; w++) words[w].assign(symbols + offsets[w], symbols + offsets[w + 1]);

  PairMap pairs;
  for (int64_t w = 0; w < n_words; w++) {
    const auto& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); i++) {
      PairStats& p = pairs[pair_key(s[i], s[i + 1])];
      p.count += counts[w];
      if (p.words.empty() || p.words.back() != w) p.words.push_back(static_cast<int32_t>(w));
    }
  }
  std::priority_queue<HeapEntry> heap;
  pairs.for_each([&](uint64_t key, const PairStats& p) { heap.push({p.count, key}); });

  std::vector<BpeMerge> merges;
  int32_t next_id = first_byte_id + 256;
  int32_t vocab = next_id;
  std::vector<uint64_t> grown;  // pairs whose count rose during one merge (queued afresh afterwards, once each)
  const int32_t report_every = std::max(1, (vocab_size - vocab) / 200);

  while (vocab < vocab_size && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    PairStats* best = pairs.find(top.key);
    if (best == nullptr || best->count <= 0) continue;
    if (best->count != top.count) {  // out of date: re-queue with the current count
      heap.push({best->count, top.key});
      continue;
    }
    const int32_t a = static_cast<int32_t>(top.key >> 32), b = static_cast<int32_t>(top.key & 0xffffffffu);
    std::string merged_bytes = token_bytes[a] + token_bytes[b];
    int32_t z;
    auto existing = token_id.find(merged_bytes);
    if (existing != token_id.end()) {
      z = existing->second;
    } else {
      z = next_id++;
      vocab++;
      token_bytes.push_back(merged_bytes);
      token_id.emplace(std::move(merged_bytes), z);
    }
    merges.push_back({a, b, z});
    const int32_t step = static_cast<int32_t>(merges.size());

    std::vector<int32_t> where = std::move(best->words);
    best->words = {};
    auto add = [&](int32_t x, int32_t y, double delta, int32_t w) {
      PairStats& p = pairs[pair_key(x, y)];
      p.count += delta;
      if (delta > 0) {
        if (p.words.empty() || p.words.back() != w) p.words.push_back(w);
        if (p.grown_at != step) {
          p.grown_at = step;
          grown.push_back(pair_key(x, y));
        }
      }
    };
    for (int32_t w : where) {
      auto& s = words[w];
      const size_t n = s.size();
      size_t i = 0;
      while (i + 1 < n && !(s[i] == a && s[i + 1] == b)) i++;
      if (i + 1 >= n) continue;  // a stale entry: the word no longer holds (a, b)
      // Rewrite in place from the first occurrence: `out` (written) never passes `i` (read).
      const double c = counts[w];
      size_t out = i;
      while (i < n) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
          if (out > 0) {
            add(s[out - 1], a, -c, w);
            add(s[out - 1], z, c, w);
          }
          if (i + 2 < n) {
            add(b, s[i + 2], -c, w);
            add(z, s[i + 2], c, w);
          }
          s[out++] = z;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      s.resize(out);
    }
    // Every occurrence of (a, b) is gone (the updates above only subtracted from it): retire the pair.
    PairStats& done = pairs[top.key];
    done.count = 0;
    done.words = {};
    for (uint64_t key : grown) {
      const PairStats* g = pairs.find(key);
      if (g->count > 0) heap.push({g->count, key});
    }
    grown.clear();
    if (static_cast<int32_t>(merges.size()) % report_every == 0) progress(static_cast<int32_t>(merges.size()));
  }
  progress(static_cast<int32_t>(merges.size()));
  return merges;
}

}  // namespace mm::cpu
