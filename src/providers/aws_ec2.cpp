#include "jitbox/aws/responses.hpp"
#include "jitbox/providers/aws.hpp"
#include "jitbox/util/base64.hpp"
#include "jitbox/util/log.hpp"

#include <array>
#include <fmt/format.h>

namespace jitbox {
namespace {

constexpr const char* k_instance_kind = "instance";
constexpr const char* k_not_found_code = "InvalidInstanceID.NotFound";

// EC2 allows at most 50 tags on a resource (Amazon EC2 User Guide, tag restrictions).
constexpr std::size_t k_max_tags = 50;

// The states list_labelled covers: every one but terminated, whose instances are gone.
constexpr std::array<const char*, 5> k_live_states{"pending", "running", "shutting-down",
                                                   "stopping", "stopped"};

std::string instance_name(const SandboxPlan& plan) {
    return "jitbox-" + plan.name;
}

std::map<std::string, std::string> tags_map(const aws::Ec2Instance& instance) {
    return {instance.tags.begin(), instance.tags.end()};
}

// Describes an instance for status: its id, then its addresses where it has them.
std::string describe_instance(const aws::Ec2Instance& instance) {
    std::string detail = instance.instance_id;
    if (!instance.private_ip.empty()) {
        detail += " private " + instance.private_ip;
    }
    if (!instance.public_ip.empty()) {
        detail += " public " + instance.public_ip;
    }
    return detail;
}

std::vector<std::string> instance_ids(const ResourceSet& resources) {
    std::vector<std::string> ids;
    for (const Resource& item : resources.items) {
        if (item.kind == k_instance_kind) {
            ids.push_back(item.id);
        }
    }
    return ids;
}

void add_tag_specification(aws::QueryParameters& parameters, int index, const char* type,
                           const std::map<std::string, std::string>& tags) {
    const std::string prefix = fmt::format("TagSpecification.{}", index);
    parameters.emplace_back(prefix + ".ResourceType", type);
    int tag = 1;
    for (const auto& [key, value] : tags) {
        parameters.emplace_back(fmt::format("{}.Tag.{}.Key", prefix, tag), key);
        parameters.emplace_back(fmt::format("{}.Tag.{}.Value", prefix, tag), value);
        ++tag;
    }
}

Result<void> check_settings(const Template& spec) {
    for (const auto& [key, value] : {std::pair{"image_id", &spec.aws.image_id},
                                     std::pair{"instance_type", &spec.aws.instance_type}}) {
        if (value->empty()) {
            return make_failure(ExitCode::usage,
                                "template \"{}\" has provider aws-ec2 but no {}; set it", spec.name,
                                key);
        }
    }
    if (spec.aws.root_volume_gib && *spec.aws.root_volume_gib <= 0) {
        return make_failure(ExitCode::usage,
                            "template \"{}\": root_volume_gib must be a whole number of GiB above "
                            "0",
                            spec.name);
    }
    return {};
}

class AwsEc2Provider final : public Provider {
public:
    AwsEc2Provider(std::unique_ptr<aws::QueryClient> ec2, const Clock& clock, aws::SleepFn sleep,
                   Ec2Timing timing)
        : m_ec2(std::move(ec2)), m_clock(clock), m_sleep(std::move(sleep)), m_timing(timing) {}

    Result<void> create(const SandboxPlan& plan, ResourceSet& created,
                        const ProgressFn& progress) override;
    Result<void> destroy(const ResourceSet& resources, std::optional<Seconds>) override;
    Result<std::vector<LabelledResource>> list_labelled(ListScope scope) override;
    Result<void> extend(const ResourceSet& resources, TimePoint expires_at) override;

private:
    Result<std::string> find_root_device(const std::string& image_id);
    Result<aws::QueryParameters> run_parameters(const SandboxPlan& plan);
    Result<std::optional<aws::Ec2Instance>> describe(const std::string& instance_id);
    Result<void> wait_until_running(const std::string& instance_id, const ProgressFn& progress);
    Result<void> wait_until_terminated(const std::string& instance_id);

    std::unique_ptr<aws::QueryClient> m_ec2;
    const Clock& m_clock;
    aws::SleepFn m_sleep;
    Ec2Timing m_timing;
};

Result<std::string> AwsEc2Provider::find_root_device(const std::string& image_id) {
    auto body = m_ec2->call("DescribeImages", {{"ImageId.1", image_id}});
    if (!body) {
        return body.error();
    }
    auto images = aws::parse_describe_images_response(*body);
    if (!images) {
        return images.error();
    }
    if (images->empty() || images->front().root_device_name.empty()) {
        return make_failure(ExitCode::usage,
                            "AWS EC2 image {} was not found in {}, or has no root device to "
                            "size; check image_id and region",
                            image_id, m_ec2->region());
    }
    return images->front().root_device_name;
}

Result<aws::QueryParameters> AwsEc2Provider::run_parameters(const SandboxPlan& plan) {
    const AwsSettings& settings = plan.spec.aws;
    aws::QueryParameters parameters{
        {"ImageId", settings.image_id},
        {"InstanceType", settings.instance_type},
        {"MinCount", "1"},
        {"MaxCount", "1"},
        // The sandbox id makes a retried RunInstances return the same instance.
        {"ClientToken", plan.id},
        {"InstanceInitiatedShutdownBehavior", "terminate"},
        {"MetadataOptions.HttpTokens", "required"},
        {"MetadataOptions.InstanceMetadataTags", "enabled"},
        {"UserData", to_base64(make_poweroff_script(plan.expires_at))},
    };
    if (!settings.subnet_id.empty()) {
        parameters.emplace_back("SubnetId", settings.subnet_id);
    }
    for (std::size_t i = 0; i < settings.security_group_ids.size(); ++i) {
        parameters.emplace_back(fmt::format("SecurityGroupId.{}", i + 1),
                                settings.security_group_ids[i]);
    }
    if (!settings.key_name.empty()) {
        parameters.emplace_back("KeyName", settings.key_name);
    }
    if (settings.root_volume_gib) {
        auto device = find_root_device(settings.image_id);
        if (!device) {
            return device.error();
        }
        parameters.insert(
            parameters.end(),
            {{"BlockDeviceMapping.1.DeviceName", *device},
             {"BlockDeviceMapping.1.Ebs.VolumeSize", std::to_string(*settings.root_volume_gib)},
             {"BlockDeviceMapping.1.Ebs.VolumeType", "gp3"},
             {"BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"}});
    }

    auto tags = plan.labels;
    tags["Name"] = instance_name(plan);
    if (tags.size() > k_max_tags) {
        return make_failure(ExitCode::usage,
                            "template \"{}\" gives the instance {} tags with jitbox's own; EC2 "
                            "accepts at most {}, so remove labels",
                            plan.spec.name, tags.size(), k_max_tags);
    }
    add_tag_specification(parameters, 1, "instance", tags);
    add_tag_specification(parameters, 2, "volume", tags);
    return parameters;
}

Result<void> AwsEc2Provider::create(const SandboxPlan& plan, ResourceSet& created,
                                    const ProgressFn& progress) {
    if (auto checked = check_settings(plan.spec); !checked) {
        return checked.error();
    }
    auto parameters = run_parameters(plan);
    if (!parameters) {
        return parameters.error();
    }

    progress(progress_step(
        fmt::format("launching {} from {}", plan.spec.aws.instance_type, plan.spec.aws.image_id)));
    auto body = m_ec2->call("RunInstances", *parameters);
    if (!body) {
        return body.error();
    }
    auto instances = aws::parse_run_instances_response(*body);
    if (!instances) {
        return instances.error();
    }
    const std::string instance_id = instances->front().instance_id;
    created.items.push_back(Resource{k_instance_kind, instance_id, instance_name(plan)});
    return wait_until_running(instance_id, progress);
}

Result<std::optional<aws::Ec2Instance>> AwsEc2Provider::describe(const std::string& instance_id) {
    std::string code;
    auto body = m_ec2->call("DescribeInstances", {{"InstanceId.1", instance_id}}, &code);
    if (!body && code == k_not_found_code) {
        return std::optional<aws::Ec2Instance>{};
    }
    if (!body) {
        return body.error();
    }
    auto page = aws::parse_describe_instances_response(*body);
    if (!page) {
        return page.error();
    }
    if (page->instances.empty()) {
        return std::optional<aws::Ec2Instance>{};
    }
    return std::optional<aws::Ec2Instance>(page->instances.front());
}

Result<void> AwsEc2Provider::wait_until_running(const std::string& instance_id,
                                                const ProgressFn& progress) {
    const TimePoint give_up = m_clock.now() + m_timing.launch_timeout;
    while (true) {
        auto instance = describe(instance_id);
        if (!instance) {
            return instance.error();
        }
        // Right after RunInstances, DescribeInstances may not know the instance yet, because
        // EC2 reads are eventually consistent; that counts as pending.
        const std::string state = *instance ? (*instance)->state : "pending";
        if (state == "running") {
            progress(progress_step(
                fmt::format("instance {} is running", describe_instance(**instance))));
            return {};
        }
        if (state != "pending") {
            return make_failure(ExitCode::provider,
                                "AWS EC2 instance {} went to state {} instead of running; see "
                                "its state reason with `aws ec2 describe-instances`",
                                instance_id, state);
        }
        if (m_clock.now() >= give_up) {
            return make_failure(ExitCode::provider,
                                "AWS EC2 instance {} was not running after {}; it is removed "
                                "again",
                                instance_id, format_duration(m_timing.launch_timeout));
        }
        progress(progress_waiting(
            fmt::format("waiting for instance {} to run ({})", instance_id, state)));
        m_sleep(m_timing.poll_interval);
    }
}

Result<void> AwsEc2Provider::wait_until_terminated(const std::string& instance_id) {
    const TimePoint give_up = m_clock.now() + m_timing.terminate_timeout;
    while (true) {
        auto instance = describe(instance_id);
        if (!instance) {
            return instance.error();
        }
        if (!*instance || (*instance)->state == "terminated") {
            return {};
        }
        if (m_clock.now() >= give_up) {
            return make_failure(
                ExitCode::provider, "AWS EC2 instance {} was still {} after {}; removal is retried",
                instance_id, (*instance)->state, format_duration(m_timing.terminate_timeout));
        }
        m_sleep(m_timing.poll_interval);
    }
}

Result<void> AwsEc2Provider::destroy(const ResourceSet& resources, std::optional<Seconds>) {
    // One call per instance, because EC2 rejects a whole TerminateInstances call when one of
    // its ids is unknown, and an unknown id here means that instance is gone.
    for (const std::string& id : instance_ids(resources)) {
        std::string code;
        auto body = m_ec2->call("TerminateInstances", {{"InstanceId.1", id}}, &code);
        if (!body && code == k_not_found_code) {
            continue;
        }
        if (!body) {
            return body.error();
        }
        if (auto parsed = aws::parse_terminate_instances_response(*body); !parsed) {
            return parsed.error();
        }
        if (auto terminated = wait_until_terminated(id); !terminated) {
            return terminated.error();
        }
    }
    return {};
}

Result<std::vector<LabelledResource>> AwsEc2Provider::list_labelled(ListScope) {
    aws::QueryParameters filters{
        {"Filter.1.Name", "tag-key"},
        {"Filter.1.Value.1", k_label_sandbox},
        {"Filter.2.Name", "instance-state-name"},
    };
    for (std::size_t i = 0; i < k_live_states.size(); ++i) {
        filters.emplace_back(fmt::format("Filter.2.Value.{}", i + 1), k_live_states[i]);
    }
    filters.emplace_back("MaxResults", "1000");

    std::vector<LabelledResource> found;
    std::string next_token;
    do {
        aws::QueryParameters parameters = filters;
        if (!next_token.empty()) {
            parameters.emplace_back("NextToken", next_token);
        }
        auto body = m_ec2->call("DescribeInstances", parameters);
        if (!body) {
            return body.error();
        }
        auto page = aws::parse_describe_instances_response(*body);
        if (!page) {
            return page.error();
        }
        for (const aws::Ec2Instance& instance : page->instances) {
            auto labels = tags_map(instance);
            const std::string name = labels.count("Name") ? labels.at("Name") : std::string();
            found.push_back(LabelledResource{{k_instance_kind, instance.instance_id, name},
                                             instance.state,
                                             std::move(labels),
                                             describe_instance(instance)});
        }
        next_token = page->next_token;
    } while (!next_token.empty());
    return found;
}

Result<void> AwsEc2Provider::extend(const ResourceSet& resources, TimePoint expires_at) {
    const std::vector<std::string> ids = instance_ids(resources);
    if (ids.empty()) {
        return {};
    }
    aws::QueryParameters parameters;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        parameters.emplace_back(fmt::format("ResourceId.{}", i + 1), ids[i]);
    }
    parameters.emplace_back("Tag.1.Key", k_label_expires_at);
    parameters.emplace_back("Tag.1.Value", format_rfc3339(expires_at));
    auto body = m_ec2->call("CreateTags", parameters);
    if (!body) {
        return body.error();
    }
    return {};
}

} // namespace

std::string make_poweroff_script(TimePoint deadline) {
    // The instance runs this itself, at boot, through cloud-init. jitbox never connects to the
    // metadata address; only the instance's own script does.
    // NOTE: the tag is followed only where the image has curl and GNU date, and the loop
    // survives only where cloud-init leaves background processes running (its units use
    // KillMode=process). Otherwise the background child's teardown alone ends the instance.
    return fmt::format(R"script(#!/bin/sh
# Written by jitbox: power this instance off at its deadline. The deadline starts as the launch
# deadline and then follows the instance tag {tag}, read through IMDSv2, which
# `jitbox extend` moves. InstanceInitiatedShutdownBehavior=terminate ends the instance.
deadline={epoch}
imds=http://169.254.169.254/latest
read_deadline() {{
    token=$(curl -sf -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/api/token") || return 1
    tag=$(curl -sf -m 5 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/tags/instance/{tag}") || return 1
    date -u -d "$tag" +%s 2>/dev/null
}}
watch_deadline() {{
    while :; do
        next=$(read_deadline)
        case "$next" in
            ''|*[!0-9]*) ;;
            *) deadline=$next ;;
        esac
        if [ "$(date -u +%s)" -ge "$deadline" ]; then
            poweroff || shutdown -h now
        fi
        sleep 60
    done
}}
watch_deadline </dev/null >/dev/null 2>&1 &
)script",
                       fmt::arg("tag", k_label_expires_at),
                       fmt::arg("epoch", deadline.time_since_epoch().count()));
}

std::unique_ptr<Provider> make_aws_ec2_provider(std::unique_ptr<aws::QueryClient> ec2,
                                                const Clock& clock, aws::SleepFn sleep,
                                                Ec2Timing timing) {
    return std::make_unique<AwsEc2Provider>(std::move(ec2), clock, std::move(sleep), timing);
}

} // namespace jitbox
