#pragma once

// An in-memory SecretStore for unit tests of code that hands credentials to a keyring.

#include "jitbox/secrets/store.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace jitbox::test {

/// Keeps items in a map, by sandbox id and key. Expiry is not enforced, so get returns every
/// item that was put. With `locked` set, get reports LookupStatus::locked and put fails with
/// ExitCode::locked, as a locked keyring does.
class MemorySecretStore final : public SecretStore {
public:
    std::string_view name() const override { return "memory"; }
    Result<void> put(const SecretItem& item) override {
        if (locked) {
            return make_failure(ExitCode::locked, "keyring memory is locked");
        }
        ++put_count;
        items[{item.sandbox_id, item.key}] = item;
        return {};
    }
    Result<SecretLookup> get(std::string_view sandbox_id, std::string_view key) override {
        if (locked) {
            return SecretLookup{LookupStatus::locked, ""};
        }
        auto found = items.find({std::string(sandbox_id), std::string(key)});
        if (found == items.end()) {
            return SecretLookup{};
        }
        return SecretLookup{LookupStatus::found, found->second.value};
    }
    Result<std::vector<SecretInfo>> list() override {
        std::vector<SecretInfo> infos;
        for (const auto& [names, item] : items) {
            infos.push_back({item.sandbox_id, item.key, item.expires_at, item.sandbox_name});
        }
        return infos;
    }
    Result<bool> remove(std::string_view sandbox_id, std::string_view key) override {
        return items.erase({std::string(sandbox_id), std::string(key)}) > 0;
    }
    Result<std::size_t> remove_sandbox(std::string_view sandbox_id) override {
        return static_cast<std::size_t>(std::erase_if(
            items, [&](const auto& entry) { return entry.first.first == sandbox_id; }));
    }
    Result<std::size_t> purge_expired(TimePoint) override { return std::size_t{0}; }

    std::map<std::pair<std::string, std::string>, SecretItem> items;
    bool locked = false;
    int put_count = 0;
};

} // namespace jitbox::test
