#pragma once

// Result<T>: a value or an Error, shaped like std::expected (which GCC 12 lacks in C++20).
// Fallible code returns Result; exceptions never cross the reactor (STYLE.md, practice 7).

#include "base/error.h"

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace vmr {

// Wraps an Error so that `return Unexpected(err)` reads like std::unexpected.
struct Unexpected {
    Error error;
    explicit Unexpected(Error e) : error(std::move(e)) {}
};

template <typename T>
class [[nodiscard]] Result {
public:
    using value_type = T;

    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor)
    Result(Unexpected u)
        : v_(std::in_place_index<1>, std::move(u.error)) {}        // NOLINT(google-explicit-constructor)
    Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT(google-explicit-constructor)
    template <typename... Args>
    explicit Result(std::in_place_t, Args&&... args) : v_(std::in_place_index<0>, std::forward<Args>(args)...)
    {
    }

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    bool has_value() const noexcept { return ok(); }

    T& value() &
    {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const&
    {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() &&
    {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const&
    {
        assert(!ok());
        return std::get<1>(v_);
    }
    Error&& error() &&
    {
        assert(!ok());
        return std::get<1>(std::move(v_));
    }

    template <typename U>
    T valueOr(U&& fallback) const&
    {
        return ok() ? value() : static_cast<T>(std::forward<U>(fallback));
    }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    using value_type = void;

    Result() = default;
    Result(Unexpected u) : err_(std::move(u.error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
    Result(Error e) : err_(std::move(e)), ok_(false) {}             // NOLINT(google-explicit-constructor)

    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    bool has_value() const noexcept { return ok_; }
    void value() const { assert(ok_); }

    const Error& error() const&
    {
        assert(!ok_);
        return err_;
    }
    Error&& error() &&
    {
        assert(!ok_);
        return std::move(err_);
    }

private:
    Error err_;
    bool ok_ = true;
};

inline Result<void> success()
{
    return {};
}

}  // namespace vmr

// Propagate an error from an expression returning Result<...>; evaluates to nothing.
#define VMR_TRY(expr)                                                                  \
    do {                                                                               \
        auto vmr_try_r_ = (expr);                                                      \
        if (!vmr_try_r_.ok()) return ::vmr::Unexpected(std::move(vmr_try_r_).error()); \
    } while (0)

#define VMR_CONCAT_INNER_(a, b) a##b
#define VMR_CONCAT_(a, b) VMR_CONCAT_INNER_(a, b)

// Evaluate a Result-valued expression and assign its value to `lhs` (a declaration such as
// `auto name` or an existing variable), or return its error:
//   VMR_TRY_ASSIGN(auto rec, store.load(name));
#define VMR_TRY_ASSIGN(lhs, expr) VMR_TRY_ASSIGN_IMPL_(VMR_CONCAT_(vmr_try_v_, __LINE__), lhs, expr)
#define VMR_TRY_ASSIGN_IMPL_(tmp, lhs, expr)                         \
    auto tmp = (expr);                                               \
    if (!tmp.ok()) return ::vmr::Unexpected(std::move(tmp).error()); \
    lhs = std::move(tmp).value()
