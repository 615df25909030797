// The inventory's import form: a chosen file's text goes into the
// records field (the form is posted as text, strictly decoded, like
// every other form of the app).
const file = document.getElementById('records-file');
const records = document.getElementById('records');
if (file && records) {
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    records.value = await f.text();
  });
}
