#include "commands.hpp"

namespace jitbox::cli {

namespace {

// The image column: a container image, an EC2 image id, or "-" for an STS role session.
std::string image_of(const Template& spec) {
    if (spec.provider == "aws-ec2") {
        return spec.aws.image_id;
    }
    return spec.image.empty() ? "-" : spec.image;
}

// Only docker templates have a network setting.
std::string network_of(const Template& spec) {
    return spec.provider == "docker" ? std::string(network_mode_name(spec.network)) : "-";
}

// JSON has null where the table shows "-".
nlohmann::json or_null(const std::string& shown) {
    return shown == "-" ? nlohmann::json(nullptr) : nlohmann::json(shown);
}

void run_templates(Context& context) {
    const Config& config = context.config();
    if (context.options().json) {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& [name, spec] : config.templates) {
            array.push_back({{"name", name},
                             {"provider", spec.provider},
                             {"image", or_null(image_of(spec))},
                             {"network", or_null(network_of(spec))},
                             {"ttl", format_duration(spec.ttl)},
                             {"max_ttl", format_duration(spec.max_ttl)},
                             {"default", name == config.default_template},
                             {"source", spec.origin}});
        }
        fmt::print("{}\n", array.dump(2));
        return;
    }
    if (context.options().quiet) {
        for (const auto& [name, spec] : config.templates) {
            fmt::print("{}\n", name);
        }
        return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "PROVIDER", "IMAGE", "NETWORK", "TTL", "MAX TTL"}};
    for (const auto& [name, spec] : config.templates) {
        std::string shown = name == config.default_template ? name + " (default)" : name;
        rows.push_back({shown, spec.provider, image_of(spec), network_of(spec),
                        format_duration(spec.ttl), format_duration(spec.max_ttl)});
    }
    print_table(rows);
    context.notice("from {}", config.path.empty() ? "the built-in default configuration"
                                                   : config.path.string());
}

} // namespace

void register_templates(CLI::App& app, Context& context) {
    CLI::App* templates = app.add_subcommand("templates", "List the templates you can use");
    templates->callback([&context] { run_templates(context); });
}

} // namespace jitbox::cli
