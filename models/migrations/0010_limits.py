from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_sharing_retention')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RateCount',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(max_length=16)),
                ('key', fields.CharField(max_length=64)),
                ('bucket', fields.BigIntField()),
                ('hits', fields.IntField(default=0)),
            ],
            options={'table': 'rate_count', 'app': 'models', 'unique_together': (('scope', 'key', 'bucket'),), 'pk_attr': 'id', 'table_description': 'How many times one rate-limited key was hit in one fixed window (see'},
            bases=['Model'],
        ),
    ]
