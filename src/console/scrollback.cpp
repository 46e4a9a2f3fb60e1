#include "console/scrollback.h"

#include <algorithm>
#include <cassert>

namespace vmr::console {

Scrollback::Piece Scrollback::append(std::string_view data)
{
    if (data.empty()) return nullptr;
    if (!pieces_.empty()) {
        Entry& last = pieces_.back();
        // Only the scrollback holds it: nobody sees it change into a bigger piece.
        if (last.piece.use_count() == 1 && last.piece->size() + data.size() <= kMergeLimit) {
            auto merged = std::make_shared<std::string>();
            merged->reserve(last.piece->size() + data.size());
            merged->append(*last.piece);
            merged->append(data);
            last.piece = std::move(merged);
            bytes_ += data.size();
            trim();
            return pieces_.back().piece;
        }
    }
    Piece p = std::make_shared<const std::string>(data);
    pieces_.push_back(Entry{begin_ + bytes_, p});
    bytes_ += data.size();
    trim();
    return p;
}

void Scrollback::trim()
{
    while (pieces_.size() > 1 && bytes_ - pieces_.front().piece->size() >= capacity_) {
        size_t n = pieces_.front().piece->size();
        pieces_.pop_front();
        begin_ += n;
        bytes_ -= n;
    }
}

Scrollback::Slice Scrollback::at(uint64_t at) const
{
    assert(at >= begin() && at < end());
    // The last piece is the usual answer (a viewer that keeps up).
    if (at >= pieces_.back().first) return Slice{pieces_.back().piece, pieces_.back().first};
    auto it = std::upper_bound(pieces_.begin(), pieces_.end(), at,
                               [](uint64_t v, const Entry& e) { return v < e.first; });
    --it;
    return Slice{it->piece, it->first};
}

}  // namespace vmr::console
