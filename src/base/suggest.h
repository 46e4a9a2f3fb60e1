#pragma once

// "Did you mean ...?" for misspelt keys: the closest known word by edit distance.

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vmr {

// Levenshtein distance (insert, delete, substitute; each costs 1), plus transposition of two
// adjacent characters (costs 1), which is the commonest typo.
size_t editDistance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo: at most
// max(1, word.size() / 3) edits. Ties go to the earlier candidate.
std::optional<std::string> closestMatch(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace vmr
