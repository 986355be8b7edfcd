from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0010_limits')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DeferredIntake',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('operation', fields.CharField(max_length=32)),
                ('address', fields.CharField(max_length=320)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('attempts', fields.IntField(default=0)),
                ('claimed_by', fields.CharField(null=True, max_length=32)),
                ('due_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'deferred_intake', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An anonymous request naming an email address, waiting for the intake worker.'},
            bases=['Model'],
        ),
    ]
