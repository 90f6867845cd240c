// Byte-level BPE training (native/cpu/bpe.cc): learns merges from a word-frequency table.
//
// Input: n_words distinct pre-tokens, word w being symbols[offsets[w] .. offsets[w+1]) (ids of single-byte
// tokens) seen counts[w] times. Ids first_byte_id .. first_byte_id+255 are the byte tokens; byte_of[i] is the byte
// that id first_byte_id+i stands for. Ids below first_byte_id are special tokens (never inside words).
// Output: merges in order, as (left, right, new_id) triples, until the vocabulary (specials + bytes + merged
// tokens) holds vocab_size tokens or no pair is left. Each step merges the pair with the highest
// total count; ties go to the smallest (left, right), so equal inputs give equal merges. A merge whose byte string
// already is a token reuses that token's id (two merge orders can spell the same string), as Hugging Face does.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace mm::cpu {

struct BpeMerge {
  int32_t left, right, merged;
};

std::vector<BpeMerge> bpe_train(const int32_t* symbols, const int64_t* offsets, const double* counts, int64_t n_words,
                                int32_t first_byte_id, const uint8_t* byte_of, int32_t vocab_size,
                                const std::function<void(int32_t merges_done)>& progress);

}  // namespace mm::cpu
