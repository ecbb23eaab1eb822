#pragma once

// An in-memory SecretStore for unit tests of code that hands credentials to a keyring.

#include "jitbox/secrets/store.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace jitbox::test {

/// Keeps items in a map. Expiry is not enforced, so get returns every item that was put. With
/// `locked` set, get reports LookupStatus::locked and put fails with ExitCode::locked, as a
/// locked keyring does.
class MemorySecretStore final : public SecretStore {
public:
    std::string_view name() const override { return "memory"; }
    Result<void> put(const SecretItem& item) override {
        if (locked) {
            return make_failure(ExitCode::locked, "keyring memory is locked");
        }
        ++put_count;
        items[{item.sandbox, item.key}] = item;
        return {};
    }
    Result<SecretLookup> get(std::string_view sandbox, std::string_view key) override {
        if (locked) {
            return SecretLookup{LookupStatus::locked, ""};
        }
        auto found = items.find({std::string(sandbox), std::string(key)});
        if (found == items.end()) {
            return SecretLookup{};
        }
        return SecretLookup{LookupStatus::found, found->second.value};
    }
    Result<std::vector<SecretInfo>> list() override { return std::vector<SecretInfo>{}; }
    Result<bool> remove(std::string_view, std::string_view) override { return false; }
    Result<std::size_t> remove_sandbox(std::string_view) override { return std::size_t{0}; }
    Result<std::size_t> purge_expired(TimePoint) override { return std::size_t{0}; }

    std::map<std::pair<std::string, std::string>, SecretItem> items;
    bool locked = false;
    int put_count = 0;
};

} // namespace jitbox::test
