from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_mail_delivery')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Employee',
            name='last_sign_in_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
