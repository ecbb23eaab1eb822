#pragma once

// GLib helpers of the secret-service backend: owning pointers for GLib types, and an operation
// whose asynchronous calls all end by one deadline.

#include <gio/gio.h>

#include <chrono>
#include <memory>
#include <vector>

namespace jitbox {

struct GObjectUnref {
    void operator()(gpointer object) const {
        if (object != nullptr) {
            g_object_unref(object);
        }
    }
};

template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

struct GErrorFree {
    void operator()(GError* error) const { g_error_free(error); }
};

using GErrorPtr = std::unique_ptr<GError, GErrorFree>;

struct GHashTableUnref {
    void operator()(GHashTable* table) const { g_hash_table_unref(table); }
};

using GHashTablePtr = std::unique_ptr<GHashTable, GHashTableUnref>;

struct GMainContextUnref {
    void operator()(GMainContext* context) const { g_main_context_unref(context); }
};

using GMainContextPtr = std::unique_ptr<GMainContext, GMainContextUnref>;

/// The result of one asynchronous call. The callback holds its own reference to the slot, so a
/// call that completes after the wait gave up still writes into valid memory.
struct AsyncResultSlot {
    GAsyncResult* result = nullptr;

    AsyncResultSlot() = default;
    AsyncResultSlot(const AsyncResultSlot&) = delete;
    AsyncResultSlot& operator=(const AsyncResultSlot&) = delete;
    ~AsyncResultSlot();
};

/// One operation of the secret-service backend. Its calls run on `context`, which it makes the
/// thread-default main context for its lifetime, so their callbacks are dispatched only while
/// it waits. At the deadline it cancels its GCancellable, and when a cancelled call still has
/// not completed a short grace period later, the wait gives up. Calls of one operation share
/// the deadline, so the whole operation ends within about `limit` plus 200 ms.
class BoundedOperation {
public:
    BoundedOperation(GMainContext* context, std::chrono::milliseconds limit);
    BoundedOperation(const BoundedOperation&) = delete;
    BoundedOperation& operator=(const BoundedOperation&) = delete;
    ~BoundedOperation();

    GCancellable* cancellable() const { return m_cancellable; }

    /// True once the deadline has passed, so a failed call was cut short by it.
    bool timed_out() const { return m_timed_out; }

    std::chrono::milliseconds limit() const { return m_limit; }

    /// Starts an asynchronous call with `start(cancellable, callback, user_data)` and waits for
    /// it. Returns the result to pass to the call's _finish function, or nullptr when the wait
    /// gave up. The result stays valid until the operation ends.
    template <typename Start>
    GAsyncResult* call(Start&& start) {
        auto slot = std::make_shared<AsyncResultSlot>();
        m_slots.push_back(slot);
        start(m_cancellable, &BoundedOperation::store_result,
              new std::shared_ptr<AsyncResultSlot>(slot));
        wait_for(*slot);
        return slot->result;
    }

private:
    static void store_result(GObject* source, GAsyncResult* result, gpointer user_data);
    static gboolean on_deadline(gpointer user_data);
    static gboolean on_give_up(gpointer user_data);

    void wait_for(const AsyncResultSlot& slot);
    GSource* attach_timeout(std::chrono::milliseconds delay, GSourceFunc callback);

    GMainContext* m_context;
    std::chrono::milliseconds m_limit;
    GCancellable* m_cancellable;
    GSource* m_deadline = nullptr;
    GSource* m_give_up = nullptr;
    bool m_timed_out = false;
    bool m_given_up = false;
    std::vector<std::shared_ptr<AsyncResultSlot>> m_slots;
};

} // namespace jitbox
