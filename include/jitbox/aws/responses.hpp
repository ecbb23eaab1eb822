#pragma once

// The parts of STS and EC2 success responses (AWS Query protocol, XML) that jitbox uses.
//
// Each parser fails with ExitCode::provider when the body is not well-formed XML, is an AWS
// error document, or lacks an element that jitbox needs. Messages name the element but never
// quote the body, because an AssumeRole response carries a secret key and a session token.

#include "jitbox/aws/sigv4.hpp"
#include "jitbox/util/result.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jitbox::aws {

/// The temporary credentials and identity from STS AssumeRole.
struct AssumedRole {
    Credentials credentials; // expiration always set
    std::string arn;         // of the assumed-role session, such as
                             // "arn:aws:sts::123456789012:assumed-role/ci/jitbox"
};

/// An EC2 instance as RunInstances and DescribeInstances describe it.
struct Ec2Instance {
    std::string instance_id; // such as "i-0abc123def4567890"
    std::string state;       // pending, running, shutting-down, terminated, stopping, stopped
    std::string private_ip;  // empty when the instance has none yet
    std::string public_ip;   // empty when the instance has none
    std::vector<std::pair<std::string, std::string>> tags;
};

/// One page of DescribeInstances results, flattened across reservations.
struct Ec2InstancePage {
    std::vector<Ec2Instance> instances;
    std::string next_token; // empty on the last page
};

/// An instance's state change from TerminateInstances.
struct Ec2StateChange {
    std::string instance_id;
    std::string previous_state;
    std::string current_state;
};

/// An AMI as DescribeImages describes it.
struct Ec2Image {
    std::string image_id;
    std::string root_device_name; // such as "/dev/xvda"; empty for instance-store images
};

Result<AssumedRole> parse_assume_role_response(std::string_view body);
Result<std::vector<Ec2Instance>> parse_run_instances_response(std::string_view body);
Result<Ec2InstancePage> parse_describe_instances_response(std::string_view body);
Result<std::vector<Ec2StateChange>> parse_terminate_instances_response(std::string_view body);
Result<std::vector<Ec2Image>> parse_describe_images_response(std::string_view body);

} // namespace jitbox::aws
