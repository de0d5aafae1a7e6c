// The two subword models of tokenizer.json: WordPiece (greedy longest match) and BPE (merge ranks).
#include <queue>

#include "hf_tokenizer.h"

namespace bmf {

namespace {

inline size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

// tokenizers' WordPiece::tokenize: a word longer than max_chars characters, or one with a part that no vocabulary
// piece matches, is the single unk id; otherwise the longest vocabulary prefix, then `prefix` + the longest
// prefix of the rest, and so on.
class WordPiece : public SubwordModel {
 public:
  WordPiece(const std::unordered_map<std::string, int>& vocab, int unk, std::string prefix, size_t max_chars)
      : vocab_(vocab), unk_(unk), prefix_(std::move(prefix)), max_chars_(max_chars) {}

  void tokenize(const std::string& w, std::vector<int>& out) const override {
    size_t chars = 0;
    for (unsigned char b : w) chars += (b & 0xC0) != 0x80;
    if (chars > max_chars_) {
      out.push_back(unk_);
      return;
    }
    const size_t mark = out.size();
    std::string sub;
    for (size_t start = 0; start < w.size();) {
      size_t end = w.size();
      int found = -1;
      while (start < end) {
        sub.assign(start > 0 ? prefix_ : std::string());
        sub.append(w, start, end - start);
        auto it = vocab_.find(sub);
        if (it != vocab_.end()) {
          found = it->second;
          break;
        }
        do --end;  // back to the previous character boundary
        while (end > start && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80);
      }
      if (found < 0) {
        out.resize(mark);
        out.push_back(unk_);
        return;
      }
      out.push_back(found);
      start = end;
    }
  }

 private:
  std::unordered_map<std::string, int> vocab_;
  int unk_;
  std::string prefix_;
  size_t max_chars_;
};

// tokenizers' BPE (Word::merge_all): symbols start as the word's characters; repeatedly the pair of adjacent
// symbols with the lowest merge rank (leftmost among equals) is merged, until no pair has a rank.
class Bpe : public SubwordModel {
 public:
  Bpe(const std::unordered_map<std::string, int>& vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      int unk, bool fuse_unk, bool ignore_merges)
      : vocab_(vocab), unk_(unk), fuse_unk_(fuse_unk), ignore_merges_(ignore_merges) {
    int rank = 0;
    for (const auto& [a, b] : merges) {
      auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end()) continue;
      merges_.emplace(key(ia->second, ib->second), std::make_pair(rank++, iab->second));
    }
  }

  void tokenize(const std::string& w, std::vector<int>& out) const override {
    if (w.empty()) return;
    if (ignore_merges_) {
      auto it = vocab_.find(w);
      if (it != vocab_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    const bool cacheable = w.size() < 256;
    if (cacheable) {
      auto it = cache_.find(w);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int> ids = merge(w);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
      if (cache_.size() >= kCacheCap) cache_.clear();
      cache_.emplace(w, std::move(ids));
    }
  }

 private:
  static constexpr size_t kCacheCap = 1 << 16;
  static uint64_t key(int a, int b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

  struct Sym {
    int id;
    int prev, next;
    bool alive;
  };
  struct Cand {
    int rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  std::vector<int> merge(const std::string& w) const {
    std::vector<Sym> sym;
    sym.reserve(w.size());
    for (size_t i = 0; i < w.size();) {
      const size_t n = std::min(utf8_len(static_cast<unsigned char>(w[i])), w.size() - i);
      auto it = vocab_.find(w.substr(i, n));
      i += n;
      int id;
      if (it != vocab_.end()) {
        id = it->second;
      } else if (unk_ >= 0) {
        if (fuse_unk_ && !sym.empty() && sym.back().id == unk_) continue;
        id = unk_;
      } else {
        continue;  // no unk token: the character is dropped, as tokenizers does
      }
      sym.push_back(Sym{id, (int)sym.size() - 1, (int)sym.size() + 1, true});
    }
    if (sym.empty()) return {};
    sym.back().next = -1;
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
    auto push = [&](int pos) {
      const int nx = sym[pos].next;
      if (nx < 0) return;
      auto it = merges_.find(key(sym[pos].id, sym[nx].id));
      if (it != merges_.end()) q.push(Cand{it->second.first, pos, it->second.second});
    };
    for (int i = 0; i + 1 < (int)sym.size(); ++i) push(i);
    while (!q.empty()) {
      const Cand c = q.top();
      q.pop();
      Sym& s = sym[c.pos];
      if (!s.alive || s.next < 0) continue;
      Sym& r = sym[s.next];
      auto it = merges_.find(key(s.id, r.id));
      if (it == merges_.end() || it->second.second != c.new_id) continue;  // stale: a neighbour changed
      s.id = c.new_id;
      r.alive = false;
      s.next = r.next;
      if (s.next >= 0) sym[s.next].prev = c.pos;
      if (s.prev >= 0) push(s.prev);
      push(c.pos);
    }
    std::vector<int> ids;
    for (int i = 0; i >= 0; i = sym[i].next) ids.push_back(sym[i].id);
    return ids;
  }

  std::unordered_map<std::string, int> vocab_;
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // (left id, right id) -> (rank, merged id)
  int unk_;
  bool fuse_unk_, ignore_merges_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;  // the runner is single-threaded
};

}  // namespace

std::unique_ptr<SubwordModel> make_wordpiece(const std::unordered_map<std::string, int>& vocab, int unk_id,
                                             const std::string& prefix, size_t max_chars) {
  return std::make_unique<WordPiece>(vocab, unk_id, prefix, max_chars);
}

std::unique_ptr<SubwordModel> make_bpe(const std::unordered_map<std::string, int>& vocab,
                                       const std::vector<std::pair<std::string, std::string>>& merges, int unk_id,
                                       bool fuse_unk, bool ignore_merges) {
  return std::make_unique<Bpe>(vocab, merges, unk_id, fuse_unk, ignore_merges);
}

}  // namespace bmf
