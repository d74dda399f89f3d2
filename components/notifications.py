"""The notifications topic: Auto Scaling events and every alarm of the stack, TLS only."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from components.findings import acknowledge


class NotificationsTopic(Construct):
    """The stack's one topic: Auto Scaling's events and every alarm, refusing plain HTTP, and open to
    CloudWatch for this account's alarms.

    ``enforce_ssl`` writes a topic policy, which replaces SNS's default one; CloudWatch publishes
    alarm actions as a service principal, so without the second statement no alarm is delivered ("is
    not authorized to perform: SNS:Publish", aws-solutions/automated-security-response-on-aws#43,
    fixed in #44 the same way). Auto Scaling's notifications use its service-linked role instead.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.topic = topic = sns.Topic(self, "Topic", enforce_ssl=True)
        stack = Stack.of(topic)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        acknowledge(
            topic,
            "AwsSolutions-SNS2",
            "Notifications carry only instance IDs, activity and alarm states; Auto Scaling and CloudWatch "
            "alarms cannot publish to a topic under the AWS managed SNS key",
        )
