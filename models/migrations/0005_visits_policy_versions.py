from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_audit_categories')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PolicyAcceptance',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', db_constraint=True, to_field='id', related_name='policy_acceptances', on_delete=OnDelete.CASCADE)),
                ('version', fields.CharField(max_length=32)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ip_truncated', fields.CharField(null=True, max_length=64)),
                ('user_agent', fields.CharField(null=True, max_length=300)),
            ],
            options={'table': 'policy_acceptance', 'app': 'models', 'unique_together': (('customer_id', 'version'),), 'pk_attr': 'id', 'table_description': 'A customer accepted a policy version (once per version).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PrivacyPolicy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('version', fields.CharField(unique=True, max_length=32)),
                ('effective_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('published_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('published_by', fields.UUIDField(null=True)),
                ('material', fields.BooleanField()),
                ('summary', fields.TextField(unique=False)),
                ('text', fields.TextField(unique=False)),
                ('changed_purposes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('notice_cursor', fields.UUIDField(null=True)),
                ('notice_done', fields.BooleanField(default=True)),
                ('notices_queued', fields.IntField(default=0)),
            ],
            options={'table': 'privacy_policy', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A published version of the privacy policy (policy section 7). Never edited once'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VisitEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('customer', fields.ForeignKeyField('models.Customer', source_field='customer_id', null=True, db_constraint=True, to_field='id', related_name='visits', on_delete=OnDelete.CASCADE)),
                ('visitor_digest', fields.CharField(null=True, db_index=True, max_length=64)),
                ('purpose', fields.CharField(max_length=32)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('page', fields.CharField(max_length=512)),
                ('action', fields.CharField(max_length=64)),
                ('referrer', fields.CharField(default='', max_length=512)),
                ('campaign', fields.CharField(default='', max_length=200)),
                ('browser', fields.CharField(default='', max_length=64)),
                ('os', fields.CharField(default='', max_length=64)),
                ('device_type', fields.CharField(default='', max_length=16)),
                ('language', fields.CharField(default='', max_length=35)),
                ('ip_full', fields.CharField(null=True, max_length=45)),
                ('ip_truncated', fields.CharField(null=True, max_length=64)),
            ],
            options={'table': 'visit_event', 'app': 'models', 'indexes': [Index(fields=['customer_id', 'at']), Index(fields=['at'])], 'pk_attr': 'id', 'table_description': 'One event collected automatically (policy section 1) by `POST /collect`.'},
            bases=['Model'],
        ),
    ]
