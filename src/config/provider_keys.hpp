#pragma once

// Readers of the template keys that belong to one provider, private to src/config: the
// generated secrets of docker templates and the AWS settings of aws-sts and aws-ec2 templates,
// plus the check that a template uses only its own provider's keys.

#include "toml_reader.hpp"

#include "jitbox/config/config.hpp"

#include <array>
#include <string_view>

namespace jitbox::config_detail {

inline constexpr std::array<std::string_view, 3> k_providers{"docker", "aws-sts", "aws-ec2"};

/// `[templates.NAME.secrets]`: `ENV_NAME = { length = 32 }` entries, sorted by name.
std::vector<GeneratedSecret> read_generated_secrets(const Field& field);

void read_aws_region(const Field& field, AwsSettings& aws);
void read_aws_endpoint_url(const Field& field, AwsSettings& aws);
void read_aws_role_arn(const Field& field, AwsSettings& aws);
void read_aws_session_policy(const Field& field, AwsSettings& aws);
void read_aws_mfa_serial(const Field& field, AwsSettings& aws);
void read_aws_image_id(const Field& field, AwsSettings& aws);
void read_aws_instance_type(const Field& field, AwsSettings& aws);
void read_aws_subnet_id(const Field& field, AwsSettings& aws);
void read_aws_security_group_ids(const Field& field, AwsSettings& aws);
void read_aws_key_name(const Field& field, AwsSettings& aws);
void read_aws_root_volume_gib(const Field& field, AwsSettings& aws);

/// Checks the rules of the template's provider once every key is read: no key of another
/// provider, the provider's required keys, and for aws-sts a ttl and max_ttl that STS accepts.
/// `field` is the template table.
void check_provider_keys(const Field& field, const Template& result);

} // namespace jitbox::config_detail
