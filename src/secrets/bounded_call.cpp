#include "bounded_call.hpp"

namespace jitbox {

namespace {

// How long a cancelled call may take to report its cancellation before the wait gives up.
constexpr std::chrono::milliseconds k_grace{200};

} // namespace

AsyncResultSlot::~AsyncResultSlot() {
    if (result != nullptr) {
        g_object_unref(result);
    }
}

BoundedOperation::BoundedOperation(GMainContext* context, std::chrono::milliseconds limit)
    : m_context(context), m_limit(limit), m_cancellable(g_cancellable_new()) {
    g_main_context_push_thread_default(m_context);
    m_deadline = attach_timeout(limit, &BoundedOperation::on_deadline);
}

BoundedOperation::~BoundedOperation() {
    for (GSource* source : {m_deadline, m_give_up}) {
        if (source != nullptr) {
            g_source_destroy(source);
            g_source_unref(source);
        }
    }
    // Cancels the calls that are still running, because no wait will collect their results.
    g_cancellable_cancel(m_cancellable);
    g_object_unref(m_cancellable);
    g_main_context_pop_thread_default(m_context);
}

void BoundedOperation::store_result(GObject* /*source*/, GAsyncResult* result,
                                    gpointer user_data) {
    auto* slot = static_cast<std::shared_ptr<AsyncResultSlot>*>(user_data);
    (*slot)->result = G_ASYNC_RESULT(g_object_ref(result));
    delete slot;
}

gboolean BoundedOperation::on_deadline(gpointer user_data) {
    auto* self = static_cast<BoundedOperation*>(user_data);
    self->m_timed_out = true;
    g_cancellable_cancel(self->m_cancellable);
    self->m_give_up = self->attach_timeout(k_grace, &BoundedOperation::on_give_up);
    return G_SOURCE_REMOVE;
}

gboolean BoundedOperation::on_give_up(gpointer user_data) {
    static_cast<BoundedOperation*>(user_data)->m_given_up = true;
    return G_SOURCE_REMOVE;
}

GSource* BoundedOperation::attach_timeout(std::chrono::milliseconds delay,
                                          GSourceFunc callback) {
    GSource* source = g_timeout_source_new(static_cast<guint>(delay.count()));
    g_source_set_callback(source, callback, this, nullptr);
    g_source_attach(source, m_context);
    return source;
}

void BoundedOperation::wait_for(const AsyncResultSlot& slot) {
    while (slot.result == nullptr && !m_given_up) {
        g_main_context_iteration(m_context, /*may_block=*/TRUE);
    }
}

} // namespace jitbox
