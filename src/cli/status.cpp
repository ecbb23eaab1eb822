#include "commands.hpp"

#include <algorithm>

namespace jitbox::cli {

namespace {

struct StatusOptions {
    std::string name;
};

// Everything known is printed first. Then an engine that did not respond makes the command
// fail, so a script can tell "no sandboxes" from "could not ask".
void fail_on_unknown(const std::vector<SandboxStatus>& statuses) {
    for (const auto& status : statuses) {
        if (status.state == "unknown") {
            std::fflush(stdout);
            throw Error(ExitCode::provider, status.problem);
        }
    }
}

void run_status(Context& context, const StatusOptions& options) {
    Lifecycle& lifecycle = context.lifecycle();
    lifecycle.reconcile();
    auto statuses = value_or_throw(lifecycle.status());
    if (!options.name.empty()) {
        std::erase_if(statuses, [&](const auto& status) {
            return status.record.name != options.name;
        });
        if (statuses.empty()) {
            throw Error(ExitCode::not_found, fmt::format("no sandbox named \"{}\"; `jitbox status` "
                                                         "lists yours", options.name));
        }
    }

    if (context.options().json) {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& status : statuses) {
            array.push_back(status_to_json(status));
        }
        fmt::print("{}\n", array.dump(2));
        fail_on_unknown(statuses);
        return;
    }
    if (context.options().quiet) {
        for (const auto& status : statuses) {
            fmt::print("{}\n", status.record.name);
        }
        fail_on_unknown(statuses);
        return;
    }
    TimePoint now = SystemClock().now();
    // The DETAIL column (such as an EC2 instance's id and addresses) appears only when a
    // provider fills it, so docker-only listings keep their columns.
    const bool with_detail = std::any_of(statuses.begin(), statuses.end(),
                                         [](const auto& status) { return !status.detail.empty(); });
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "TEMPLATE", "PROVIDER", "STATE", "EXPIRES IN", "OWNER"}};
    if (with_detail) {
        rows.front().push_back("DETAIL");
    }
    for (const auto& status : statuses) {
        const auto& record = status.record;
        rows.push_back({record.name, record.template_name, record.provider, status.state,
                        format_time_left(record.expires_at, now), record.owner});
        if (with_detail) {
            rows.back().push_back(status.detail);
        }
    }
    print_table(rows);
    fail_on_unknown(statuses);
}

} // namespace

void register_status(CLI::App& app, Context& context) {
    auto options = std::make_shared<StatusOptions>();
    CLI::App* status = app.add_subcommand("status", "List your sandboxes, or show one");
    status->add_option("name", options->name, "Show only this sandbox")->type_name("NAME");
    status->callback([&context, options] { run_status(context, *options); });
}

} // namespace jitbox::cli
