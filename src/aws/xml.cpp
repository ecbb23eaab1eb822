#include "xml.hpp"

#include <fmt/format.h>

namespace jitbox::aws::xml {

Result<void> load(pugi::xml_document& document, std::string_view body, std::string_view operation) {
    const pugi::xml_parse_result parsed =
        document.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!parsed) {
        return make_failure(ExitCode::provider,
                            "invalid XML in the {} response: {} at byte {}; try again, and "
                            "check for a proxy between jitbox and AWS if it persists",
                            operation, parsed.description(), parsed.offset);
    }
    if (!document.document_element()) {
        return make_failure(ExitCode::provider, "the {} response has no XML element", operation);
    }
    return {};
}

std::string_view local_name(pugi::xml_node node) {
    const std::string_view name = node.name();
    const std::size_t colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

pugi::xml_node child(pugi::xml_node parent, std::string_view name) {
    for (const pugi::xml_node node : parent.children()) {
        if (node.type() == pugi::node_element && local_name(node) == name) {
            return node;
        }
    }
    return {};
}

std::string text(pugi::xml_node node) {
    std::string_view value = node.text().get();
    constexpr std::string_view k_white_space = " \t\r\n";
    const std::size_t first = value.find_first_not_of(k_white_space);
    if (first == std::string_view::npos) {
        return {};
    }
    const std::size_t last = value.find_last_not_of(k_white_space);
    return std::string(value.substr(first, last - first + 1));
}

} // namespace jitbox::aws::xml
