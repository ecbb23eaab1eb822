#include "bounded_call.hpp"
#include "jitbox/secrets/store.hpp"
#include "jitbox/state/store.hpp"
#include "jitbox/util/log.hpp"
#include "secret_service_module.hpp"

#include <algorithm>
#include <libsecret/secret.h>
#include <tuple>

namespace jitbox {

namespace {

// libsecret's item type, whose name jitbox::SecretItem hides in this namespace.
using ServiceItem = ::SecretItem;

// The sandbox id, by which items are found, and the sandbox name, which is only shown.
constexpr const char* k_sandbox_attribute = "sandbox";
constexpr const char* k_sandbox_name_attribute = "sandbox-name";
constexpr const char* k_key_attribute = "key";
constexpr const char* k_expires_attribute = "expires-at";

const SecretSchema& jitbox_schema() {
    static const SecretSchema schema = [] {
        SecretSchema value{};
        value.name = "io.jitbox.Secret";
        value.flags = SECRET_SCHEMA_NONE;
        value.attributes[0] = {k_sandbox_attribute, SECRET_SCHEMA_ATTRIBUTE_STRING};
        value.attributes[1] = {k_key_attribute, SECRET_SCHEMA_ATTRIBUTE_STRING};
        value.attributes[2] = {k_expires_attribute, SECRET_SCHEMA_ATTRIBUTE_STRING};
        value.attributes[3] = {k_sandbox_name_attribute, SECRET_SCHEMA_ATTRIBUTE_STRING};
        return value;
    }();
    return schema;
}

GHashTablePtr make_attributes() {
    return GHashTablePtr(g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free));
}

void add_attribute(GHashTable* attributes, const char* name, std::string_view value) {
    g_hash_table_insert(attributes, g_strdup(name), g_strndup(value.data(), value.size()));
}

std::string attribute_of(GHashTable* attributes, const char* name) {
    const auto* value = static_cast<const char*>(g_hash_table_lookup(attributes, name));
    return value == nullptr ? std::string() : std::string(value);
}

// The items that a search returned, unreferenced when it goes out of scope.
class ItemList {
public:
    explicit ItemList(GList* items) : m_items(items) {}
    ItemList(const ItemList&) = delete;
    ItemList& operator=(const ItemList&) = delete;
    ~ItemList() { g_list_free_full(m_items, g_object_unref); }

    std::vector<ServiceItem*> items() const {
        std::vector<ServiceItem*> result;
        for (GList* node = m_items; node != nullptr; node = node->next) {
            result.push_back(static_cast<ServiceItem*>(node->data));
        }
        return result;
    }

private:
    GList* m_items;
};

// Reads jitbox's attributes of an item, or returns nullopt for an item that lacks them.
std::optional<SecretInfo> info_of(ServiceItem* item) {
    GHashTablePtr attributes(secret_item_get_attributes(item));
    if (!attributes) {
        return std::nullopt;
    }
    auto expires_at = parse_rfc3339(attribute_of(attributes.get(), k_expires_attribute));
    std::string sandbox_id = attribute_of(attributes.get(), k_sandbox_attribute);
    std::string key = attribute_of(attributes.get(), k_key_attribute);
    if (!expires_at || !is_valid_sandbox_name(sandbox_id) || !is_valid_secret_key(key)) {
        return std::nullopt;
    }
    std::string sandbox_name = attribute_of(attributes.get(), k_sandbox_name_attribute);
    if (!is_valid_sandbox_name(sandbox_name)) {
        sandbox_name.clear();
    }
    return SecretInfo{std::move(sandbox_id), std::move(key), *expires_at, std::move(sandbox_name)};
}

Failure locked_failure(std::string_view action) {
    return make_failure(ExitCode::locked,
                        "Secret Service: {} failed: the default collection is locked. Unlock it "
                        "(logging in to the desktop usually does), or set JITBOX_KEYRING to "
                        "kernel or file",
                        action);
}

class SecretServiceStore final : public SecretStore {
public:
    SecretServiceStore(std::string address, const Clock& clock)
        : m_address(std::move(address)), m_clock(clock), m_context(g_main_context_new()) {}

    std::string_view name() const override { return "secret-service"; }

    // Connects to the service and checks that it has a default collection. With
    // WhenLocked::fail it also checks that the collection is unlocked.
    Result<void> connect(WhenLocked when_locked) {
        BoundedOperation operation(m_context.get(), k_secret_service_timeout);
        GAsyncResult* result = operation.call([](auto cancellable, auto callback, auto data) {
            secret_service_open(SECRET_TYPE_SERVICE, nullptr, SECRET_SERVICE_NONE, cancellable,
                                callback, data);
        });
        GError* raw_error = nullptr;
        if (result != nullptr) {
            m_service.reset(secret_service_open_finish(result, &raw_error));
        }
        if (!m_service) {
            return call_failure(operation, GErrorPtr(raw_error), "connecting");
        }

        auto collection = default_collection(operation);
        if (!collection) {
            return collection.error();
        }
        if (when_locked == WhenLocked::fail && secret_collection_get_locked(collection->get())) {
            return locked_failure("opening");
        }
        return {};
    }

    Result<void> put(const SecretItem& item) override {
        const std::string action =
            fmt::format("storing secret {} of sandbox {}", item.key, item.sandbox_id);
        if (auto valid = validate_secret_item(item, m_clock.now()); !valid) {
            return valid;
        }
        BoundedOperation operation(m_context.get(), k_secret_service_timeout);
        auto collection = unlocked_default_collection(operation, action);
        if (!collection) {
            return collection.error();
        }
        auto old_items = search(operation, item.sandbox_id, item.key, SECRET_SEARCH_ALL, action);
        if (!old_items) {
            return old_items.error();
        }
        auto created = create(operation, collection->get(), item, action);
        if (!created) {
            return created.error();
        }

        // The old items go only after the new one exists, so a failure in between leaves a
        // value in place. CreateItem without replace makes a new object, and the path check
        // guards against a service that reuses the old one.
        const char* new_path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(created->get()));
        for (ServiceItem* old_item : (*old_items)->items()) {
            if (g_strcmp0(g_dbus_proxy_get_object_path(G_DBUS_PROXY(old_item)), new_path) == 0) {
                continue;
            }
            if (auto deleted = delete_item(operation, old_item, action); !deleted) {
                return deleted;
            }
        }
        return {};
    }

    Result<SecretLookup> get(std::string_view sandbox_id, std::string_view key) override {
        if (auto valid = validate_secret_name(sandbox_id, key); !valid) {
            return valid.error();
        }
        const std::string action =
            fmt::format("looking up secret {} of sandbox {}", key, sandbox_id);
        BoundedOperation operation(m_context.get(), k_secret_service_timeout);
        // No SECRET_SEARCH_UNLOCK: a locked item is reported, never unlocked with a prompt.
        auto flags = static_cast<SecretSearchFlags>(SECRET_SEARCH_ALL | SECRET_SEARCH_LOAD_SECRETS);
        auto found = search(operation, sandbox_id, key, flags, action);
        if (!found) {
            return found.error();
        }

        const TimePoint now = m_clock.now();
        bool saw_locked = false;
        for (ServiceItem* item : (*found)->items()) {
            auto info = info_of(item);
            if (!info || info->expires_at <= now) {
                continue;
            }
            SecretValue* value = secret_item_get_secret(item);
            if (value == nullptr && !secret_item_get_locked(item)) {
                return make_failure(ExitCode::internal,
                                    "Secret Service: {} failed: the service sent no value for "
                                    "an unlocked item",
                                    action);
            }
            if (value == nullptr) {
                saw_locked = true;
                continue;
            }
            gsize length = 0;
            const gchar* data = secret_value_get(value, &length);
            SecretLookup lookup{LookupStatus::found, std::string(data, length)};
            secret_value_unref(value);
            return lookup;
        }

        if (saw_locked) {
            return SecretLookup{LookupStatus::locked, ""};
        }
        // A locked collection may hold the item where a search cannot see it.
        auto collection = default_collection(operation);
        if (collection && secret_collection_get_locked(collection->get())) {
            return SecretLookup{LookupStatus::locked, ""};
        }
        return SecretLookup{};
    }

    Result<std::vector<SecretInfo>> list() override {
        const std::string action = "listing secrets";
        BoundedOperation operation(m_context.get(), k_secret_service_timeout);
        if (auto collection = unlocked_default_collection(operation, action); !collection) {
            return collection.error();
        }
        auto found = search(operation, {}, {}, SECRET_SEARCH_ALL, action);
        if (!found) {
            return found.error();
        }
        const TimePoint now = m_clock.now();
        std::vector<SecretInfo> infos;
        for (ServiceItem* item : (*found)->items()) {
            auto info = info_of(item);
            if (!info && secret_item_get_locked(item)) {
                return locked_failure(action);
            }
            if (info && info->expires_at > now) {
                infos.push_back(std::move(*info));
            }
        }
        std::sort(infos.begin(), infos.end(), [](const auto& a, const auto& b) {
            return std::tie(a.sandbox_id, a.key) < std::tie(b.sandbox_id, b.key);
        });
        return infos;
    }

    Result<bool> remove(std::string_view sandbox_id, std::string_view key) override {
        if (auto valid = validate_secret_name(sandbox_id, key); !valid) {
            return valid.error();
        }
        auto removed = remove_where(
            sandbox_id, key, [](const SecretInfo&) { return true; },
            fmt::format("removing secret {} of sandbox {}", key, sandbox_id));
        if (!removed) {
            return removed.error();
        }
        return *removed > 0;
    }

    Result<std::size_t> remove_sandbox(std::string_view sandbox_id) override {
        if (auto valid = validate_secret_sandbox(sandbox_id); !valid) {
            return valid.error();
        }
        return remove_where(
            sandbox_id, {}, [](const SecretInfo&) { return true; },
            fmt::format("removing the secrets of sandbox {}", sandbox_id));
    }

    Result<std::size_t> purge_expired(TimePoint now) override {
        auto expired = [now](const SecretInfo& info) { return info.expires_at <= now; };
        return remove_where({}, {}, expired, "removing expired secrets");
    }

private:
    Failure call_failure(const BoundedOperation& operation, GErrorPtr error,
                         std::string_view action) const {
        if (operation.timed_out() || error == nullptr) {
            return make_failure(ExitCode::internal,
                                "Secret Service: {} timed out: no reply within {} ms on the "
                                "session bus {}={}",
                                action, operation.limit().count(), k_bus_variable, m_address);
        }
        if (g_error_matches(error.get(), SECRET_ERROR, SECRET_ERROR_IS_LOCKED)) {
            return locked_failure(action);
        }
        return make_failure(ExitCode::internal, "Secret Service: {} failed: {}", action,
                            error->message);
    }

    Result<GObjectPtr<SecretCollection>> default_collection(BoundedOperation& operation) {
        GAsyncResult* result = operation.call([&](auto cancellable, auto callback, auto data) {
            secret_collection_for_alias(m_service.get(), SECRET_COLLECTION_DEFAULT,
                                        SECRET_COLLECTION_NONE, cancellable, callback, data);
        });
        GError* raw_error = nullptr;
        GObjectPtr<SecretCollection> collection;
        if (result != nullptr) {
            collection.reset(secret_collection_for_alias_finish(result, &raw_error));
        }
        if (result == nullptr || raw_error != nullptr) {
            return call_failure(operation, GErrorPtr(raw_error), "finding the default collection");
        }
        if (!collection) {
            return make_failure(ExitCode::internal,
                                "Secret Service: there is no default collection, and jitbox "
                                "creates none. Create one with your keyring manager (such as "
                                "Seahorse), or set JITBOX_KEYRING to kernel or file");
        }
        return collection;
    }

    // The default collection, or a failure when it is locked: a locked collection may hide the
    // attributes of its items, so neither a change nor a listing could be trusted.
    Result<GObjectPtr<SecretCollection>> unlocked_default_collection(BoundedOperation& operation,
                                                                     std::string_view action) {
        auto collection = default_collection(operation);
        if (collection && secret_collection_get_locked(collection->get())) {
            return locked_failure(action);
        }
        return collection;
    }

    // Searches for items of jitbox's schema. An empty sandbox id or key matches every value.
    Result<std::unique_ptr<ItemList>> search(BoundedOperation& operation,
                                             std::string_view sandbox_id, std::string_view key,
                                             SecretSearchFlags flags, std::string_view action) {
        GHashTablePtr attributes = make_attributes();
        if (!sandbox_id.empty()) {
            add_attribute(attributes.get(), k_sandbox_attribute, sandbox_id);
        }
        if (!key.empty()) {
            add_attribute(attributes.get(), k_key_attribute, key);
        }
        GAsyncResult* result = operation.call([&](auto cancellable, auto callback, auto data) {
            secret_service_search(m_service.get(), &jitbox_schema(), attributes.get(), flags,
                                  cancellable, callback, data);
        });
        GError* raw_error = nullptr;
        GList* items = nullptr;
        if (result != nullptr) {
            items = secret_service_search_finish(m_service.get(), result, &raw_error);
        }
        if (result == nullptr || raw_error != nullptr) {
            g_list_free_full(items, g_object_unref);
            return call_failure(operation, GErrorPtr(raw_error), action);
        }
        return std::make_unique<ItemList>(items);
    }

    Result<GObjectPtr<ServiceItem>> create(BoundedOperation& operation,
                                           SecretCollection* collection, const SecretItem& item,
                                           std::string_view action) {
        GHashTablePtr attributes = make_attributes();
        add_attribute(attributes.get(), k_sandbox_attribute, item.sandbox_id);
        add_attribute(attributes.get(), k_key_attribute, item.key);
        add_attribute(attributes.get(), k_expires_attribute, format_rfc3339(item.expires_at));
        if (!item.sandbox_name.empty()) {
            add_attribute(attributes.get(), k_sandbox_name_attribute, item.sandbox_name);
        }
        const std::string label =
            item.sandbox_name.empty()
                ? fmt::format("jitbox: {} of sandbox {}", item.key, item.sandbox_id)
                : fmt::format("jitbox: {} of sandbox {} ({})", item.key, item.sandbox_name,
                              item.sandbox_id);
        SecretValue* value = secret_value_new(item.value.data(),
                                              static_cast<gssize>(item.value.size()), "text/plain");
        GAsyncResult* result = operation.call([&](auto cancellable, auto callback, auto data) {
            secret_item_create(collection, &jitbox_schema(), attributes.get(), label.c_str(), value,
                               SECRET_ITEM_CREATE_NONE, cancellable, callback, data);
        });
        secret_value_unref(value);
        GError* raw_error = nullptr;
        GObjectPtr<ServiceItem> created;
        if (result != nullptr) {
            created.reset(secret_item_create_finish(result, &raw_error));
        }
        if (!created) {
            return call_failure(operation, GErrorPtr(raw_error), action);
        }
        return created;
    }

    Result<void> delete_item(BoundedOperation& operation, ServiceItem* item,
                             std::string_view action) {
        GAsyncResult* result = operation.call([&](auto cancellable, auto callback, auto data) {
            secret_item_delete(item, cancellable, callback, data);
        });
        GError* raw_error = nullptr;
        if (result != nullptr && secret_item_delete_finish(item, result, &raw_error)) {
            return {};
        }
        return call_failure(operation, GErrorPtr(raw_error), action);
    }

    template <typename Predicate>
    Result<std::size_t> remove_where(std::string_view sandbox_id, std::string_view key,
                                     Predicate&& matches, const std::string& action) {
        BoundedOperation operation(m_context.get(), k_secret_service_timeout);
        if (auto collection = unlocked_default_collection(operation, action); !collection) {
            return collection.error();
        }
        auto found = search(operation, sandbox_id, key, SECRET_SEARCH_ALL, action);
        if (!found) {
            return found.error();
        }
        std::size_t removed = 0;
        for (ServiceItem* item : (*found)->items()) {
            auto info = info_of(item);
            if (!info && secret_item_get_locked(item)) {
                return locked_failure(action); // a locked item in another collection
            }
            if (!info || !matches(*info)) {
                continue;
            }
            if (auto deleted = delete_item(operation, item, action); !deleted) {
                return deleted.error();
            }
            ++removed;
        }
        return removed;
    }

    std::string m_address;
    const Clock& m_clock;
    GMainContextPtr m_context;
    // Declared after m_context, so it is released first: its signal subscriptions belong to
    // that context.
    GObjectPtr<SecretService> m_service;
};

} // namespace

} // namespace jitbox

void jitbox_secret_service_open(const std::string& address, const jitbox::Clock& clock,
                                jitbox::WhenLocked when_locked,
                                jitbox::Result<std::unique_ptr<jitbox::SecretStore>>* result) {
    auto store = std::make_unique<jitbox::SecretServiceStore>(address, clock);
    if (auto connected = store->connect(when_locked); !connected) {
        *result = connected.error();
        return;
    }
    *result = std::unique_ptr<jitbox::SecretStore>(std::move(store));
}
