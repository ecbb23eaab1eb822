#pragma once

// Small helpers over pugixml for AWS Query protocol responses. AWS puts its elements in a
// default namespace, and the helpers compare local names so that a prefix would not matter.

#include "jitbox/util/result.hpp"

#include <pugixml.hpp>

#include <string>
#include <string_view>

namespace jitbox::aws::xml {

/// Parses `body` into `document`. On invalid XML, fails with ExitCode::provider and a message
/// with pugixml's description and byte offset, but none of the body's text.
Result<void> load(pugi::xml_document& document, std::string_view body, std::string_view operation);

/// The element name without a namespace prefix.
std::string_view local_name(pugi::xml_node node);

/// The first child element with this local name, or a null node.
pugi::xml_node child(pugi::xml_node parent, std::string_view name);

/// The text of an element with surrounding white space trimmed, or "" for a null node.
std::string text(pugi::xml_node node);

} // namespace jitbox::aws::xml
