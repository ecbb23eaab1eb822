// The `[guardrails]` table: each key's reader records where its value is, because a denial
// names the guardrail by FILE:LINE:COLUMN.

#include "guardrail_keys.hpp"

#include <algorithm>
#include <array>
#include <filesystem>

namespace jitbox::config_detail {
namespace {

constexpr std::size_t k_max_image_pattern_length = 512;

void remember_origin(const Field& field, Guardrails& guardrails, std::string_view key) {
    guardrails.origins[std::string(key)] = format_position(field.source, field.node.source());
}

std::string read_image_pattern(const Field& field) {
    const std::string& pattern = read_non_empty_string(field, "\"docker.io/library/*\"");
    const bool printable = std::all_of(pattern.begin(), pattern.end(), [](char c) {
        return static_cast<unsigned char>(c) > ' ' && c != '\x7f';
    });
    if (!printable || pattern.size() > k_max_image_pattern_length) {
        fail(field, fmt::format("invalid image pattern \"{}\": use an image reference or a glob "
                                "of at most {} characters without spaces, such as "
                                "\"docker.io/library/*\" or \"busybox:*\"",
                                pattern, k_max_image_pattern_length));
    }
    return pattern;
}

std::string read_mount_source_prefix(const Field& field) {
    const std::string& text = read_non_empty_string(field, "\"/srv/fixtures\"");
    std::filesystem::path path = std::filesystem::path(text).lexically_normal();
    if (!path.has_filename() && path != path.root_path()) {
        path = path.parent_path();
    }
    if (text.front() != '/') {
        fail(field, fmt::format("invalid mount source \"{}\": use an absolute folder, such as "
                                "\"/srv/fixtures\"",
                                text));
    }
    return path.string();
}

void read_images(const Field& field, Guardrails& guardrails) {
    guardrails.images = read_each(field, "an array of strings", read_image_pattern);
    remember_origin(field, guardrails, "images");
}

void read_mount_sources(const Field& field, Guardrails& guardrails) {
    guardrails.mount_sources = read_each(field, "an array of strings", read_mount_source_prefix);
    remember_origin(field, guardrails, "mount_sources");
}

void read_privileged(const Field& field, Guardrails& guardrails) {
    guardrails.privileged = read_bool(field);
    remember_origin(field, guardrails, "privileged");
}

void read_host_namespaces(const Field& field, Guardrails& guardrails) {
    guardrails.host_namespaces = read_bool(field);
    remember_origin(field, guardrails, "host_namespaces");
}

void read_devices(const Field& field, Guardrails& guardrails) {
    guardrails.devices = read_bool(field);
    remember_origin(field, guardrails, "devices");
}

void read_capabilities(const Field& field, Guardrails& guardrails) {
    guardrails.capabilities = read_each(field, "an array of strings", read_capability);
    remember_origin(field, guardrails, "capabilities");
}

void read_max_memory(const Field& field, Guardrails& guardrails) {
    guardrails.max_memory = read_memory(field);
    remember_origin(field, guardrails, "max_memory");
}

void read_max_cpus(const Field& field, Guardrails& guardrails) {
    guardrails.max_cpus = read_cpus(field);
    remember_origin(field, guardrails, "max_cpus");
}

void read_max_pids(const Field& field, Guardrails& guardrails) {
    const std::int64_t limit = read_integer(field);
    if (limit < 1) {
        fail(field,
             fmt::format("invalid max_pids {}: use an integer of at least 1, such as 256", limit));
    }
    guardrails.max_pids = limit;
    remember_origin(field, guardrails, "max_pids");
}

void read_max_ttl(const Field& field, Guardrails& guardrails) {
    guardrails.max_ttl = read_duration(field, ZeroDuration::rejected);
    remember_origin(field, guardrails, "max_ttl");
}

void read_max_live_per_user(const Field& field, Guardrails& guardrails) {
    const std::int64_t count = read_integer(field);
    if (count < 1 || count > 10000) {
        fail(field, fmt::format("invalid max_live_per_user {}: use 1 to 10000 sandboxes; a user "
                                "with no role gets none anyway",
                                count));
    }
    guardrails.max_live_per_user = static_cast<int>(count);
    remember_origin(field, guardrails, "max_live_per_user");
}

constexpr std::array<KeyRule<Guardrails>, 11> k_guardrail_keys{{
    {"images", read_images},
    {"mount_sources", read_mount_sources},
    {"privileged", read_privileged},
    {"host_namespaces", read_host_namespaces},
    {"devices", read_devices},
    {"capabilities", read_capabilities},
    {"max_memory", read_max_memory},
    {"max_cpus", read_max_cpus},
    {"max_pids", read_max_pids},
    {"max_ttl", read_max_ttl},
    {"max_live_per_user", read_max_live_per_user},
}};

} // namespace

void read_guardrails(const Field& field, Config& config) {
    read_keys(field, k_guardrail_keys, config.guardrails);
    config.guardrails.origin = format_position(field.source, field.node.source());
}

} // namespace jitbox::config_detail
