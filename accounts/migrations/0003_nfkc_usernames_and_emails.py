import unicodedata

from django.contrib.auth.base_user import BaseUserManager
from django.db import IntegrityError, migrations, transaction


def normalise_usernames_and_emails(apps, schema_editor):
    """Store existing usernames and emails NFKC-normalised, as signup and login now spell them.

    A login now looks up the normalised name, so a user stored with, say, a Kelvin sign could no
    longer log in. A row whose normal form belongs to another user already (two accounts that were
    look-alikes) is left as it is and named on the console for staff to rename.
    """
    User = apps.get_model("accounts", "User")
    table = User._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, username, email FROM {table} "  # noqa: S608 (the model's own table)
            "WHERE NOT (username IS NFKC NORMALIZED AND email IS NFKC NORMALIZED)"
        )
        rows = cursor.fetchall()
    for pk, username, email in rows:
        normal = {
            "username": unicodedata.normalize("NFKC", username),
            "email": BaseUserManager.normalize_email(unicodedata.normalize("NFKC", email)),
        }
        try:
            with transaction.atomic():
                User.objects.filter(pk=pk).update(**normal)
        except IntegrityError:
            print(f"\n  accounts: user {pk} ({username!r}, {email!r}) kept: its normal form is taken; rename it")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_users_unique_ignoring_case_as_iexact'),
    ]

    operations = [
        migrations.RunPython(normalise_usernames_and_emails, migrations.RunPython.noop, elidable=True),
    ]
