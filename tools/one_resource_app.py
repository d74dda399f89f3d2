"""The yardstick `make bench-synth` divides by: one SNS topic, synthesized by the same CDK CLI,
aws-cdk-lib and Python as the app, so what is left of the ratio is this app's own cost."""

import aws_cdk as cdk
from aws_cdk import aws_sns as sns

app = cdk.App()
sns.Topic(cdk.Stack(app, "OneResource"), "Topic")
app.synth()
