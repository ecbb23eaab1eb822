#include "jitbox/aws/responses.hpp"

#include "jitbox/aws/errors.hpp"
#include "xml.hpp"

#include <fmt/format.h>

#include <vector>

namespace jitbox::aws {
namespace {

constexpr std::string_view k_assume_role = "AWS STS AssumeRole";
constexpr std::string_view k_run_instances = "AWS EC2 RunInstances";
constexpr std::string_view k_describe_instances = "AWS EC2 DescribeInstances";
constexpr std::string_view k_terminate_instances = "AWS EC2 TerminateInstances";
constexpr std::string_view k_describe_images = "AWS EC2 DescribeImages";

// Loads the body and checks that its root is `root`. An AWS error document in place of the
// expected response becomes that error's failure.
Result<void> load_response(pugi::xml_document& document, std::string_view body,
                           std::string_view operation, std::string_view root) {
    if (auto loaded = xml::load(document, body, operation); !loaded) {
        return loaded.error();
    }
    const std::string_view found = xml::local_name(document.document_element());
    if (found == root) {
        return {};
    }
    if (const std::optional<ApiError> error = parse_api_error(body)) {
        return make_failure(ExitCode::provider, "{} failed: {}: {}", operation, error->code,
                            error->message);
    }
    return make_failure(ExitCode::provider, "the {} response is a <{}> document; expected <{}>",
                        operation, found, root);
}

// Follows `path` down from `node` and returns the text there, failing when an element is
// missing or the text is empty.
Result<std::string> required_text(pugi::xml_node node, const std::vector<std::string_view>& path,
                                  std::string_view operation) {
    std::string described(xml::local_name(node));
    if (const pugi::xml_node parent = node.parent(); parent.type() == pugi::node_element) {
        described = fmt::format("{}/{}", xml::local_name(parent), described);
    }
    for (const std::string_view name : path) {
        node = xml::child(node, name);
        described += fmt::format("/{}", name);
    }
    if (!node) {
        return make_failure(ExitCode::provider, "the {} response has no {} element", operation,
                            described);
    }
    std::string value = xml::text(node);
    if (value.empty()) {
        return make_failure(ExitCode::provider, "the {} response has an empty {} element",
                            operation, described);
    }
    return value;
}

// Each `item` child of `parent`, the way EC2 lists sets.
std::vector<pugi::xml_node> items(pugi::xml_node parent) {
    std::vector<pugi::xml_node> found;
    for (const pugi::xml_node node : parent.children()) {
        if (node.type() == pugi::node_element && xml::local_name(node) == "item") {
            found.push_back(node);
        }
    }
    return found;
}

Result<Ec2Instance> parse_instance(pugi::xml_node item, std::string_view operation) {
    auto instance_id = required_text(item, {"instanceId"}, operation);
    if (!instance_id) {
        return instance_id.error();
    }
    auto state = required_text(item, {"instanceState", "name"}, operation);
    if (!state) {
        return state.error();
    }

    Ec2Instance instance;
    instance.instance_id = std::move(instance_id).value();
    instance.state = std::move(state).value();
    instance.private_ip = xml::text(xml::child(item, "privateIpAddress"));
    instance.public_ip = xml::text(xml::child(item, "ipAddress"));
    for (const pugi::xml_node tag : items(xml::child(item, "tagSet"))) {
        instance.tags.emplace_back(xml::text(xml::child(tag, "key")),
                                   xml::text(xml::child(tag, "value")));
    }
    return instance;
}

Result<void> append_instances(pugi::xml_node instances_set, std::string_view operation,
                              std::vector<Ec2Instance>& instances) {
    for (const pugi::xml_node item : items(instances_set)) {
        auto instance = parse_instance(item, operation);
        if (!instance) {
            return instance.error();
        }
        instances.push_back(std::move(instance).value());
    }
    return {};
}

} // namespace

Result<AssumedRole> parse_assume_role_response(std::string_view body) {
    pugi::xml_document document;
    if (auto loaded = load_response(document, body, k_assume_role, "AssumeRoleResponse"); !loaded) {
        return loaded.error();
    }
    const pugi::xml_node root = document.document_element();

    AssumedRole role;
    struct Field {
        std::vector<std::string_view> path;
        std::string* destination;
    };
    std::string expiration;
    for (const Field& field : {
             Field{{"AssumeRoleResult", "Credentials", "AccessKeyId"},
                   &role.credentials.access_key_id},
             Field{{"AssumeRoleResult", "Credentials", "SecretAccessKey"},
                   &role.credentials.secret_access_key},
             Field{{"AssumeRoleResult", "Credentials", "SessionToken"},
                   &role.credentials.session_token},
             Field{{"AssumeRoleResult", "Credentials", "Expiration"}, &expiration},
             Field{{"AssumeRoleResult", "AssumedRoleUser", "Arn"}, &role.arn},
         }) {
        auto value = required_text(root, field.path, k_assume_role);
        if (!value) {
            return value.error();
        }
        *field.destination = std::move(value).value();
    }

    const auto expires = parse_rfc3339(expiration);
    if (!expires) {
        return make_failure(ExitCode::provider,
                            "the {} response has an invalid Expiration \"{}\"; expected an "
                            "RFC 3339 time",
                            k_assume_role, expiration);
    }
    role.credentials.expiration = *expires;
    return role;
}

Result<std::vector<Ec2Instance>> parse_run_instances_response(std::string_view body) {
    pugi::xml_document document;
    if (auto loaded = load_response(document, body, k_run_instances, "RunInstancesResponse");
        !loaded) {
        return loaded.error();
    }

    std::vector<Ec2Instance> instances;
    const pugi::xml_node set = xml::child(document.document_element(), "instancesSet");
    if (auto appended = append_instances(set, k_run_instances, instances); !appended) {
        return appended.error();
    }
    if (instances.empty()) {
        return make_failure(ExitCode::provider,
                            "the {} response lists no instance in RunInstancesResponse/"
                            "instancesSet",
                            k_run_instances);
    }
    return instances;
}

Result<Ec2InstancePage> parse_describe_instances_response(std::string_view body) {
    pugi::xml_document document;
    if (auto loaded =
            load_response(document, body, k_describe_instances, "DescribeInstancesResponse");
        !loaded) {
        return loaded.error();
    }

    const pugi::xml_node root = document.document_element();
    Ec2InstancePage page;
    for (const pugi::xml_node reservation : items(xml::child(root, "reservationSet"))) {
        const pugi::xml_node set = xml::child(reservation, "instancesSet");
        if (auto appended = append_instances(set, k_describe_instances, page.instances);
            !appended) {
            return appended.error();
        }
    }
    page.next_token = xml::text(xml::child(root, "nextToken"));
    return page;
}

Result<std::vector<Ec2StateChange>> parse_terminate_instances_response(std::string_view body) {
    pugi::xml_document document;
    if (auto loaded =
            load_response(document, body, k_terminate_instances, "TerminateInstancesResponse");
        !loaded) {
        return loaded.error();
    }

    std::vector<Ec2StateChange> changes;
    const pugi::xml_node set = xml::child(document.document_element(), "instancesSet");
    for (const pugi::xml_node item : items(set)) {
        auto instance_id = required_text(item, {"instanceId"}, k_terminate_instances);
        if (!instance_id) {
            return instance_id.error();
        }
        auto current = required_text(item, {"currentState", "name"}, k_terminate_instances);
        if (!current) {
            return current.error();
        }
        changes.push_back(
            Ec2StateChange{std::move(instance_id).value(),
                           xml::text(xml::child(xml::child(item, "previousState"), "name")),
                           std::move(current).value()});
    }
    return changes;
}

Result<std::vector<Ec2Image>> parse_describe_images_response(std::string_view body) {
    pugi::xml_document document;
    if (auto loaded = load_response(document, body, k_describe_images, "DescribeImagesResponse");
        !loaded) {
        return loaded.error();
    }

    std::vector<Ec2Image> images;
    const pugi::xml_node set = xml::child(document.document_element(), "imagesSet");
    for (const pugi::xml_node item : items(set)) {
        auto image_id = required_text(item, {"imageId"}, k_describe_images);
        if (!image_id) {
            return image_id.error();
        }
        images.push_back(
            Ec2Image{std::move(image_id).value(), xml::text(xml::child(item, "rootDeviceName"))});
    }
    return images;
}

} // namespace jitbox::aws
